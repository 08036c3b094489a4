"""Every block of the README runs as it stands, on its own, in a fresh folder, and shows what the
README says it shows.

Each block is run as a reader would run it: bash blocks with bash, Python blocks with this
environment's Python, from an empty folder holding only ``.venv`` (a link to this environment,
which the README's ``.venv/bin/...`` commands name), with stdout and stderr piped as in a log.
The install and test blocks are what CI runs (.ci/run); running them here would install the
project again and run this very suite, so they are checked for what they say instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"(?:<!-- (?P<tag>[\w:]+) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    tag: str | None
    lang: str
    code: str


def blocks() -> list[Block]:
    return [Block(m["tag"], m["lang"], m["code"]) for m in BLOCK.finditer(README)]


def block(tag: str) -> Block:
    (found,) = [b for b in blocks() if b.tag == tag]
    return found


def python_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang == "python"]


def run(code: Block, folder: Path) -> subprocess.CompletedProcess:
    """Run one block in ``folder`` as it stands; it must succeed."""
    venv = folder / ".venv"
    if not venv.exists():
        venv.symlink_to(sys.prefix, target_is_directory=True)
    if code.lang == "python":
        (folder / "block.py").write_text(code.code)
        command = [sys.executable, "block.py"]
    else:
        assert code.lang == "bash", code
        command = ["bash", "-euo", "pipefail", "-c", code.code]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"CI": "true"}
    done = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, (code.code, done.stdout[-3000:], done.stderr[-3000:])
    return done


def test_every_block_is_run_here_or_by_ci():
    """A block added to the README needs a test below (or a CI tag)."""
    tagged = [b.tag for b in blocks() if b.lang == "bash"]
    assert tagged == [
        "ci:install",
        "ci:test",
        "test:compare",
        "test:figure",
        "test:probe",
        "test:init",
        "test:runs",
    ]
    assert len(python_blocks()) == 2
    assert {b.lang for b in blocks()} == {"bash", "python", "text"}


def test_the_quick_comparison_shows_what_the_readme_says(tmp_path):
    """The main job as written: its table is the README's, line for line; then the block that
    regenerates the README's picture, in the same folder, resumes it and trains nothing."""
    done = run(block("test:compare"), tmp_path)
    (shown,) = [b.code for b in blocks() if b.lang == "text" and "baseline:" in b.code]
    printed = [line.rstrip() for line in done.stdout.splitlines()]
    assert printed[: len(shown.splitlines())] == [line.rstrip() for line in shown.splitlines()]
    after = [line for line in printed[len(shown.splitlines()) :] if line]
    assert after[0].startswith("params: exact parameter count")  # the legend under the table
    assert "Best mean test accuracy: Han at depth 6" in done.stdout
    assert "LCW stayed at the baseline at depths 2, 6" in done.stdout
    assert len(re.findall(r"^models \d+/18 after", done.stderr, re.M)) == 18  # a log's lines
    assert (tmp_path / "reports" / "compare" / "report" / "index.html").exists()
    again = run(block("test:figure"), tmp_path)
    assert "18 already finished" in again.stderr and "0 models trained" in again.stderr
    picture = tmp_path / "docs" / "images" / "compare.png"
    report = tmp_path / "reports" / "compare" / "report" / "test_metric.png"
    assert picture.read_bytes() == report.read_bytes()


def test_the_python_probe_example(tmp_path):
    done = run(python_blocks()[0], tmp_path)
    assert done.stdout.startswith("ProbeResults(4096 samples, 2 sites)")
    assert json.loads((tmp_path / "probe.json").read_text())["schema_version"] == 1


def test_the_saved_model_probe_block(tmp_path):
    """Its status column and its diagnosis agree on where units die, and in a pipe every row
    is one line with its status in full."""
    done = run(block("test:probe"), tmp_path)
    assert "verdict: output V" in done.stdout
    document = json.loads((tmp_path / "probe.json").read_text())
    sites = document["sites"]
    assert len(sites) == 24
    (dead,) = [h for h in document["diagnosis"] if h["rule"] == "dead"]
    assert dead["site"] == "act16" and round(dead["value"], 2) == 0.75  # "75% of act16's units"
    flagged = [s["name"] for s in sites if s["dead_fraction"] >= 0.5]
    assert flagged[0] == "act16"
    assert [s["name"] for s in sites if s["status"] == "dead units"] == flagged
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("act")}
    assert len(rows) == 24 and rows["act16"].rstrip().endswith("dead units")
    assert rows["act16"].split()[1:3] == ["ReLU", "(N,8)"]
    assert (tmp_path / "probe-report" / "index.html").exists()


def test_the_init_block_fixes_the_collapsed_network(tmp_path):
    """What the README says: C2C yes before, no after; collapsed -> healthy from site 17 on."""
    done = run(block("test:init"), tmp_path)
    printed = done.stdout
    assert "before verdict" in printed and "network C2C: yes" in printed
    assert "network C2C: no" in printed.split("after  verdict", 1)[1].splitlines()[0]
    rows = {line.split()[0]: line for line in printed.splitlines() if line.startswith("act")}
    assert "collapsed -> healthy" in rows["act17"] and "dead units -> healthy" in rows["act16"]
    assert ["collapsed" in rows[f"act{k}"].split("->")[-2] for k in range(15, 19)] == [
        False,
        False,
        True,
        True,
    ]
    assert all("-> healthy" in row for row in rows.values())
    assert (tmp_path / "deep-fixed.pt").exists() and (tmp_path / "init-report/index.html").exists()


def test_the_monitor_example_warns_once(tmp_path):
    done = run(python_blocks()[1], tmp_path)
    assert done.stderr.count("MonitorWarning: step 10:") == 1
    assert "units at site 3 are dead" in done.stderr
    assert "variability: step" not in done.stderr  # not a second time, as a line of its own
    assert (tmp_path / "runs" / "watch" / "metrics.jsonl").exists()
    assert not (tmp_path / "runs" / "watch" / "checkpoints").exists()


def test_the_train_and_report_block(tmp_path):
    done = run(block("test:runs"), tmp_path)
    assert "(baseline, the majority class: test 0.6017)" in done.stdout
    assert (tmp_path / "runs" / "han8" / "model.pt").exists()
    assert (tmp_path / "runs" / "han8" / "report" / "index.html").exists()


def test_ci_reads_its_commands_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_block install" in ci and "readme_block test" in ci
    install = block("ci:install").code
    assert "pip install torch==" in install and 'pip install -e ".[dev]"' in install
    # the one command installs and runs the main job: the quick default comparison
    assert install.strip().endswith("&& .venv/bin/variability compare")
    assert block("ci:test").code.strip() == ".venv/bin/python -m pytest"


def test_ci_checks_lint_format_and_types_and_the_package_ships_its_types():
    ci = (ROOT / ".ci" / "run").read_text()
    for check in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert f"\n{check}\n" in ci, check
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(r.startswith("mypy") for r in project["project"]["optional-dependencies"]["dev"])
    assert project["tool"]["mypy"]["packages"] == ["variability"]
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["variability"]
    assert (ROOT / "variability" / "py.typed").is_file()


def test_the_readme_picture_comes_from_the_comparison_report():
    assert "(docs/images/compare.png)" in README
    image = ROOT / "docs" / "images" / "compare.png"
    assert image.read_bytes().startswith(b"\x89PNG")
    assert (
        "cp reports/compare/report/test_metric.png docs/images/compare.png"
        in block("test:figure").code
    )


@pytest.mark.parametrize("claim", ["took", "load average"])
def test_time_claims_say_the_machine_and_the_load(claim):
    """A time in the README comes with the machine and the load it was measured at."""
    section = README.split("## Compare FC, LCW and Han", 1)[1].split("\n## ", 1)[0]
    assert claim in section and "2 vCPUs" in section
