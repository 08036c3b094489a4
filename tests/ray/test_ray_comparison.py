"""A comparison on a real Ray cluster (2 CPUs, started in this process): the same records as on
this machine, run directories brought home by the driver, a killed worker's model retried once
(and failed, named, when its worker dies again)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from variability.experiments.comparison import CompareSettings, compare
from variability.experiments.jobs import JobsFailed
from variability.experiments.ray_pool import RayExecutor, WorkerDied
from variability.experiments.run_files import MARK
from variability.runs import read_records

from .conftest import busy_ray_workers

pytestmark = pytest.mark.usefixtures("ray_here")

SMALL = CompareSettings(
    depths=(2, 3), families=("fc", "han"), seeds=1, steps=8, every=4, batch_size=64, tolerance=0.25
)
LONG_CELL = CompareSettings(
    depths=(24,), families=("fc",), seeds=1, steps=400, every=20, batch_size=64, tolerance=0.25
)
"""One model training for seconds, so that a test can kill its worker mid-run."""


def records(folder: Path) -> dict[str, dict]:
    lines = read_records(folder / "results.jsonl")
    by_cell = {record["cell"]: record for record in lines}
    assert len(by_cell) == len(lines), "a model was written twice"
    return by_cell


def files(run: Path) -> list[str]:
    return sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())


def test_ray_writes_the_same_records_as_the_local_executor_and_brings_the_runs_home(tmp_path):
    local = tmp_path / "local"
    compare(SMALL, local, workers=1)
    notes: list[str] = []
    with RayExecutor(files="return", say=notes.append) as executor:
        compare(SMALL, tmp_path / "ray", executor=executor)
    here, there = records(local), records(tmp_path / "ray")
    assert sorted(here) == sorted(there) and len(here) == 4
    for cell, record in here.items():
        assert set(record) == set(there[cell]), cell
        for field, value in record.items():
            if field != "seconds":  # wall time: the one field that may differ
                assert there[cell][field] == value, (cell, field)
    assert notes == []
    for cell in here:
        run = tmp_path / "ray" / "cells" / cell
        assert files(run) == files(local / "cells" / cell)
        written = json.loads((run / "result.json").read_text())["run_dir"]
        assert "variability-job-" in written, written  # trained in a worker's scratch copy...
        mine = torch.load(local / "cells" / cell / "model.pt", weights_only=True)
        theirs = torch.load(run / "model.pt", weights_only=True)  # ...and written here
        weights = [k for k, v in mine["state_dict"].items() if isinstance(v, torch.Tensor)]
        assert weights and all(
            torch.equal(mine["state_dict"][k], theirs["state_dict"][k]) for k in weights
        )
    assert not list((tmp_path / "ray").rglob(MARK)), "the driver's check file was left behind"


def test_a_killed_worker_is_retried_once_and_the_results_are_complete(tmp_path):
    settings = dataclasses.replace(LONG_CELL, depths=(2, 24))
    notes: list[str] = []
    killed: list[str] = []

    def kill_the_first_worker(cell, step):
        if not killed and step < settings.steps:
            (pid,) = busy_ray_workers()  # one model at a time: its worker is the busy one
            os.kill(pid, signal.SIGKILL)
            killed.append(cell.name)

    with RayExecutor(say=notes.append) as executor:
        comparison = compare(
            settings, tmp_path, workers=1, executor=executor, on_step=kill_the_first_worker
        )
    assert len(killed) == 1
    retries = [note for note in notes if "running it again" in note]
    assert retries == [
        f"{killed[0]}: its Ray worker died (WorkerCrashedError); running it again (attempt 2 of 2)"
    ]
    done = records(tmp_path)  # every line whole: read_records would skip a torn one
    assert sorted(done) == sorted(cell.name for cell in comparison.cells) and len(done) == 2
    assert (tmp_path / "results.jsonl").read_text().count("\n") == 2
    assert done[killed[0]]["steps"] == settings.steps


def test_a_worker_that_dies_again_fails_its_model_by_name_and_writes_nothing(tmp_path):
    notes: list[str] = []
    kills: list[int] = []

    def kill_every_worker(cell, step):
        for pid in busy_ray_workers():
            os.kill(pid, signal.SIGKILL)
            kills.append(pid)

    with RayExecutor(say=notes.append) as executor, pytest.raises(JobsFailed) as raised:
        compare(LONG_CELL, tmp_path, workers=1, executor=executor, on_step=kill_every_worker)
    ((name, error),) = raised.value.failures
    assert name == "fc-d24-s0" and isinstance(error, WorkerDied)
    assert "died on each of 2 attempts" in str(error)
    assert len(set(kills)) == 2
    assert [n for n in notes if n.startswith("fc-d24-s0 failed: WorkerDied")]
    assert read_records(tmp_path / "results.jsonl") == []
