"""The installed ``variability`` script in a real subprocess: one call per model format family
and exit code (the README's commands: tests/test_readme.py).

Each call pays for a fresh torch import (a few seconds), so there are few of them; the in-process
tests cover the rest.
"""

from __future__ import annotations

import json
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


def test_in_a_pipe_every_row_is_one_line_with_its_name_and_status_in_full(tmp_path):
    """A log is not a terminal: the table is printed at full width whatever COLUMNS says; no
    site name wraps onto a second line and no status is cut to 'collaps...'."""
    (tmp_path / "longnets.py").write_text(
        "from torch import nn\n"
        "def net():\n"
        "    model = nn.Sequential()\n"
        "    model.add_module('encoder_block_with_a_rather_long_name', "
        "nn.Sequential(nn.Linear(2, 4), nn.ReLU()))\n"
        "    model.add_module('decoder_block_with_an_even_longer_name', "
        "nn.Sequential(nn.Linear(4, 1), nn.Tanh()))\n"
        "    return model\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        model = __import__("longnets").net()
    finally:
        sys.path.remove(str(tmp_path))
    with torch.no_grad():
        model.decoder_block_with_an_even_longer_name[0].weight.zero_()  # the tanh collapses
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", **ENV, "COLUMNS": "60"}
    done = subprocess.run(
        [str(SCRIPT), "probe", "weights.pt", "--arch", "longnets:net", "--samples", "300"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("encoder_", "decoder_"))]
    assert [row.split()[0] for row in rows] == [
        "encoder_block_with_a_rather_long_name.1",
        "decoder_block_with_an_even_longer_name.1",
    ]
    assert rows[1].rstrip().endswith("collapsed") and "…" not in done.stdout
