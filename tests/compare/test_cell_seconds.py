"""A comparison model's `seconds` in results.jsonl counts its training over every resume."""

from __future__ import annotations

import time

import pytest
import torch

from variability.experiments.comparison import CompareSettings, plan_cells
from variability.experiments.comparison.cells import run_cell


def test_a_resumed_cell_counts_the_seconds_of_its_first_segment(tmp_path):
    settings = CompareSettings(
        params=800, depths=(2,), families=("fc",), seeds=1, steps=20, every=5, tolerance=0.25
    )
    task = settings.load_task()
    (cell,) = plan_cells(settings, task.d_in, task.d_out)

    def slow_until_12(step: int) -> None:
        time.sleep(0.1)  # 10 steps of at least 0.1 s before the checkpoint of step 10
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cell(cell, settings, task, tmp_path, torch.device("cpu"), slow_until_12)
    started = time.perf_counter()
    record = run_cell(cell, settings, task, tmp_path, torch.device("cpu"))
    assert record["seconds"] >= time.perf_counter() - started + 1.0
