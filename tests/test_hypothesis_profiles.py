"""With CI=true the randomised tests draw the same examples on every run; locally, fresh ones."""

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import settings

CONFTEST = Path(__file__).with_name("conftest.py")

# A property run in a fresh process, with the profiles of tests/conftest.py: it prints the
# examples it drew.
SCRIPT = f"""
import runpy
runpy.run_path({str(CONFTEST)!r})
from hypothesis import given, settings, strategies as st
drawn = []
@settings(max_examples=20)
@given(st.integers(0, 10**9))
def draw(x):
    drawn.append(x)
draw()
print(settings.default.derandomize, settings.default.database, sorted(set(drawn)))
"""


def draw(ci: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ci_profile_draws_the_same_examples_every_run():
    first, second = draw("true"), draw("true")
    assert first == second
    assert first.startswith("True None [")


def test_local_profile_draws_fresh_examples():
    first, second = draw(None), draw(None)
    assert first.startswith("False ")
    assert first != second  # 20 draws from 10^9 values: equal by chance with odds ~1e-170


def test_this_run_uses_the_profile_its_environment_asks_for():
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:  # a profile named explicitly wins over CI
        expected = settings.get_profile(chosen)
        assert settings.default.derandomize is expected.derandomize
        assert (settings.default.database is None) is (expected.database is None)
        return
    assert settings.default.derandomize is in_ci
    assert (settings.default.database is None) is in_ci
