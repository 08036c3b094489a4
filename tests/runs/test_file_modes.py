"""Files written atomically get the umask's mode, as a plain write would, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from variability import build_model, load_task, save_model
from variability.cli.app import app
from variability.experiments.comparison import CompareSettings, check_settings
from variability.runs.trainer import TrainConfig, train


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_atomically_written_file_follows_the_umask(tmp_path, umask):
    expected = 0o666 & ~umask
    model = build_model("fc", 2, 1, 2, width=4, seed=0)
    written = [save_model(model, tmp_path / "saved.pt")]

    run = tmp_path / "run"
    train(model, load_task("checkerboard", 0), TrainConfig(steps=4, every=2), run)
    written += [run / "run.json", run / "result.json", run / "model.pt"]
    written += [run / "checkpoints" / "last.pt", run / "metrics.jsonl"]

    check_settings(tmp_path, CompareSettings(), fresh=False)
    written.append(tmp_path / "compare.json")

    json_out, csv_out = tmp_path / "probe.json", tmp_path / "probe.csv"
    args = ["probe", str(run / "model.pt"), "--samples", "32", "--quiet"]
    done = CliRunner().invoke(app, [*args, "--json", str(json_out), "--csv", str(csv_out)])
    assert done.exit_code == 0, done.output
    written += [json_out, csv_out]

    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(expected) for p in written}
