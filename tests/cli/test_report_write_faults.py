"""Reports that cannot be written: one line, exit code 2, and nothing left behind.

`probe --report DIR` and `report RUN --out DIR` on a read-only disk, on a full disk, and where a
parent of DIR is a file. Disks are small tmpfs mounts (tests/mounts.py).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from variability.runs import Monitor

from ..mounts import tmpfs


@pytest.fixture
def run_dir(tmp_path):
    """A small run directory of a Monitor, for `variability report`."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.rand(64, 2)
    with Monitor(model, tmp_path / "run", every=5, probe_inputs=x, quiet=True, warn=False) as m:
        for step in range(20):
            with m.step(step):
                model(x).pow(2).mean().backward()
            m.log(loss=1.0)
    return tmp_path / "run"


def write_report(cli, command, source, target):
    """Run the command with its report going to ``target``."""
    if command == "probe":
        return cli("probe", source, "--samples", "64", "--report", target)
    return cli("report", source, "--out", target, "--quiet")


@pytest.fixture(params=["probe", "report"])
def command(request, toolkit_file, run_dir):
    """(the command, what it reads)."""
    return request.param, toolkit_file if request.param == "probe" else run_dir


def test_parent_is_a_file(cli, tmp_path, command):
    name, source = command
    (tmp_path / "taken").write_text("a file, not a folder")
    for target in (tmp_path / "taken" / "report", tmp_path / "taken" / "deeper" / "report"):
        line = write_report(cli, name, source, target).assert_user_error("cannot write the report")
        assert f"{tmp_path / 'taken'} is a file, not a folder" in line
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


def test_read_only_disk(cli, tmp_path, command):
    name, source = command
    with tmpfs(tmp_path / "ro", read_only=True) as disk:
        line = write_report(cli, name, source, disk / "report").assert_user_error(
            "cannot write the report"
        )
        assert "Read-only file system" in line
        assert list(disk.iterdir()) == []


def test_full_disk_leaves_no_partial_folder(cli, tmp_path, command):
    name, source = command
    with tmpfs(tmp_path / "full", size="64k") as disk:
        (disk / "kept.txt").write_text("written before")
        line = write_report(cli, name, source, disk / "a" / "b" / "report").assert_user_error(
            "cannot write the report"
        )
        assert "No space left on device" in line
        assert sorted(p.name for p in disk.iterdir()) == ["kept.txt"]  # no a/, no staging
        assert (disk / "kept.txt").read_text() == "written before"


def test_an_earlier_report_survives_a_full_disk(cli, tmp_path, command):
    """The folder being replaced stays whole when its replacement cannot be written."""
    name, source = command
    with tmpfs(tmp_path / "full", size="64k") as disk:
        earlier = disk / "report"
        earlier.mkdir()
        (earlier / "index.html").write_text("<p>earlier</p>")
        write_report(cli, name, source, earlier).assert_user_error("No space left on device")
        assert [p.name for p in disk.iterdir()] == ["report"]
        assert (earlier / "index.html").read_text() == "<p>earlier</p>"


def test_json_and_csv_writes_fail_the_same_way(cli, tmp_path, toolkit_file):
    (tmp_path / "taken").write_text("")
    for option in ("--json", "--csv"):
        line = cli(
            "probe", toolkit_file, "--samples", "64", option, tmp_path / "taken" / "out"
        ).assert_user_error("cannot write")
        assert "is a file, not a folder" in line
    with tmpfs(tmp_path / "ro", read_only=True) as disk:
        cli("probe", toolkit_file, "--samples", "64", "--json", disk / "a" / "p.json")
        assert list(disk.iterdir()) == []
