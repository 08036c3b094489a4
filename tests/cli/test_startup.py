"""Start-up: ``variability --help`` and ``--version`` import no torch, each command's module is
imported only when that command runs, and a probe imports nothing it does not use (no plotting,
no pandas, no torch.compile machinery). The times are measured by benchmarks/bench_startup.py
(docs/benchmarks.md); these tests see the imports behind them, which do not depend on load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from variability.cli.app import COMMANDS, load_command

IMPORTS_OF_A_RUN = """
import json, sys
from variability.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
HEAVY = ("torch", "numpy", "pandas", "matplotlib", "seaborn", "scipy", "sklearn", "numba")


def run(*args: str, cwd=None) -> tuple[int, set[str], str]:
    """The console script's main in a new interpreter: exit code, modules imported, stdout."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF_A_RUN, *args],
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "100", "PATH": "/usr/bin:/bin"},
        timeout=300,
        cwd=cwd,
    )
    *printed, last = done.stdout.strip().splitlines()
    outcome = json.loads(last)
    return outcome["code"], set(outcome["modules"]), "\n".join(printed)


@pytest.mark.parametrize("args", [("--help",), ("--version",), (), ("nonsense",)])
def test_help_and_version_import_no_torch_and_no_command(args):
    code, modules, printed = run(*args)
    assert code == (0 if args in (("--help",), ("--version",)) else 2)  # no command: help, 2
    loaded = [m for m in modules if m.split(".")[0] in HEAVY]
    assert loaded == [], loaded
    assert not [
        m for m in modules if m.startswith("variability.cli.") and m.split(".")[2] in COMMANDS
    ]
    if args == ("--help",):
        for name, line in COMMANDS.items():  # every command listed, with its line
            assert f"{name}  " in printed and " ".join(line.split()[:3]) in printed


def test_a_probe_imports_no_plotting_no_pandas_and_no_compile_machinery(tmp_path):
    from variability import build_model, save_model

    save_model(build_model("fc", 2, 1, 3, width=4, seed=0), tmp_path / "model.pt")
    code, modules, printed = run("probe", "model.pt", "--samples", "300", cwd=tmp_path)
    assert code == 0 and "verdict:" in printed
    for heavy in ("pandas", "matplotlib", "seaborn", "sklearn", "torch._dynamo"):
        assert heavy not in modules, heavy
    assert "variability.cli.compare" not in modules and "variability.cli.train" not in modules


def test_every_command_is_listed_with_the_first_line_of_its_help():
    """The list ``variability --help`` shows without importing the commands is their own."""
    for name, line in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert (command.help or "").split("\n\n")[0] == line, name
