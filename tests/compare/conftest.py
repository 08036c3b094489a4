"""A tiny comparison, run once through the command line and shared by the tests that only read it.

At 640 parameters on the checkerboard, depth 32 gives FC-ReLU 4 units per layer (637 parameters)
and Han 10 (661); depth 2 gives 23 (645) and 106 (637, a tie with 107: the narrower) units:
every count within the default 5% of the budget, on either side. Training is 4 steps: the tests
are about initialisation, the files and the report, not about accuracy. (LCW is in the report's
browser test, tests/reports/test_comparison_report.py.)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from variability.cli.app import app

ENV = {"CI": "true", "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "120"}
TINY = [
    "--params", "640",
    "--depths", "2,32",
    "--families", "fc,han",
    "--seeds", "3",
    "--steps", "4",
    "--every", "2",
    "--batch-size", "64",
]  # fmt: skip
TINY_CELLS = 12


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def invoke(*args: object) -> Invocation:
    """Run the app in this process with stdout and stderr kept apart."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    return Invocation(result.exit_code, result.stdout, result.stderr, result.exception)


def assert_one_line_error(run: Invocation, *fragments: str) -> str:
    """Exit 2, one line on stderr holding every fragment, no traceback."""
    assert run.exit_code == 2, (run.exit_code, run.stdout, run.stderr, run.exception)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def read_results(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def tiny_comparison(tmp_path_factory) -> tuple[Path, Invocation]:
    """The tiny comparison, finished, with its report (read-only: copy it to change it)."""
    out = tmp_path_factory.mktemp("compare") / "tiny"
    run = invoke("compare", *TINY, "--workers", "1", "--out", out)
    assert run.exit_code == 0, (run.stdout, run.stderr, run.exception)
    return out, run


@pytest.fixture
def tiny_copy(tiny_comparison, tmp_path) -> Path:
    """A copy of the finished tiny comparison that a test may change."""
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_comparison[0], copy)
    return copy
