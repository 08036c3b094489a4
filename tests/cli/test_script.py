"""The installed ``variability`` script in a real subprocess: one call per model format family
and exit code, and the README's "Probe a saved model" commands as written.

Each call pays for a fresh torch import (a few seconds), so there are few of them; the in-process
tests cover the rest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

from .conftest import ENV, TouchOnUnpickle, collapse, export_program, small_fc

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPT = BIN / "variability"


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    assert SCRIPT.exists(), f"the console script is not installed next to {sys.executable}"
    env = {"PATH": f"{BIN}:/usr/bin:/bin", **ENV}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_export_program_to_files_with_fail_on_exit_3(tmp_path):
    export_program(collapse(small_fc()), tmp_path / "model.pt2")
    done = run(
        "probe",
        "model.pt2",
        "--samples",
        "300",
        "--fail-on",
        "collapsed",
        "--json",
        "p.json",
        "--csv",
        "p.csv",
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip() == "fail-on collapsed: act3 is collapsed (V = 0)"
    assert (
        json.loads((tmp_path / "p.json").read_text())["verdict"]["first_collapsed_site"] == "act3"
    )
    assert (tmp_path / "p.csv").read_text().count("\n") == 5  # header, 3 sites, the output
    assert "network C2C: yes" in done.stdout


def test_pickle_refused_exit_2_and_nothing_ran(tmp_path):
    marker = tmp_path / "pwned"
    torch.save(TouchOnUnpickle(marker), tmp_path / "model.pt")
    done = run("probe", "model.pt", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--trust-pickle" in lines[0] and "Traceback" not in done.stderr
    assert not marker.exists()


def test_state_dict_with_a_factory_in_the_working_directory_json_to_stdout(tmp_path):
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n"
        "def net(width):\n"
        "    return nn.Sequential(nn.Linear(4, width), nn.Sigmoid(), nn.Linear(width, 1))\n"
    )
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Sigmoid(), torch.nn.Linear(6, 1))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    done = run("probe", "weights.pt", "--arch", "mynets:net", "--arch-kwargs", '{"width": 6}',
               "--samples", "500", "--json", "-", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # nothing but JSON on stdout
    assert [s["name"] for s in document["sites"]] == ["1"] and document["samples"] == 500
    assert document["inputs"]["sample_shape"] == [4]  # from the first Linear layer
    assert "guessed from the first layer '0'" in done.stderr  # notes go to stderr


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Probe a saved model", 1)[1].split("\n## ", 1)[0]


def test_readme_probe_commands_run_as_written(tmp_path, monkeypatch):
    section = readme_section()
    (python,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    (command,) = re.findall(r"<!-- test:probe -->\n```bash\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(python, "README.md", "exec"), {})
    assert command.startswith(".venv/bin/variability probe ")
    done = run(*command.split()[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "verdict: output V" in done.stdout
    document = json.loads((tmp_path / "probe.json").read_text())
    assert len(document["sites"]) == 24
    # what the README says of this network: dead units pile up from layer 16 on
    (dead,) = [h for h in document["diagnosis"] if h["rule"] == "dead"]
    assert dead["site"] == "act16"
    assert (tmp_path / "probe-report" / "index.html").exists()
