"""Errors the command line alone shows come before torch is imported, in the commands' words.

A missing model file, inputs file or run directory took seconds to report (everything was
imported first); the console script now checks them before any heavy import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from variability.cli.app import load_command
from variability.cli.main import VALUE_OPTIONS, quick_check

ROOT = Path(__file__).resolve().parents[2]
PROBE_IN_A_FRESH_PROCESS = """
import json, sys
from variability.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def fresh_process(*args: str | Path) -> tuple[dict, str]:
    """Run the console script's main in a new interpreter: (its exit code and whether torch
    was imported, its stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE_IN_A_FRESH_PROCESS, *map(str, args)],
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "120", "PATH": "/usr/bin:/bin"},
        timeout=120,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("probe", "absent.pt"),
        ("probe", "absent[bold].pt"),  # printed as it is, not read as markup
        ("probe", "--samples", "9", "--json", "-", "absent.pt", "--quiet"),
        ("probe", "{model}", "--inputs", "absent.npy"),
        ("probe", "--inputs=absent.npy", "{model}"),
        ("report", "absent-run", "--out", "somewhere"),
    ],
)
def test_a_missing_file_is_reported_before_torch_is_imported(cli, toolkit_file, tmp_path, args):
    args = tuple(a.format(model=toolkit_file) for a in args)
    args = tuple(str(tmp_path / a) if a.startswith("absent") else a for a in args)
    outcome, stderr = fresh_process(*args)
    assert outcome == {"code": 2, "torch": False}
    slow = cli(*args)  # the command's own check, after every import: the same line
    assert slow.exit_code == 2 and stderr == slow.stderr
    assert stderr.startswith("error: ") and len(stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("probe", "--help"),
        ("probe",),
        ("probe", "a.pt", "b.pt"),
        ("probe", "--arch", "absent.module:factory", "{model}"),
        ("probe", "{model}", "--report", "absent-folder", "--json", "absent.json"),
        ("probe", "--", "{model}"),
        ("report", "{run}", "--out", "absent"),
        ("train", "--out", "absent"),
        ("--version",),
    ],
)
def test_nothing_else_is_judged_early(toolkit_file, tmp_path, args):
    args = tuple(a.format(model=toolkit_file, run=tmp_path) for a in args)
    assert quick_check(args) is None


def test_the_early_check_knows_every_option_that_takes_a_value():
    """Its list of options with values is the commands' own: an option added to a command
    without it would have its value taken for the model file."""
    for name, listed in VALUE_OPTIONS.items():
        command = load_command(name)
        taking = {
            option
            for param in command.params
            if param.param_type_name == "option" and not param.is_flag
            for option in param.opts
        }
        assert listed == taking, name


def test_the_console_script_and_python_m_use_the_early_check():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"variability": "variability.cli.main:main"}
    assert (
        "from variability.cli.main import main"
        in (ROOT / "variability" / "__main__.py").read_text()
    )
