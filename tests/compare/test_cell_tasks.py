"""A worker loads each task once: the paper's protocol (two output columns) must not get the task
an earlier default-protocol cell loaded in the same process."""

from __future__ import annotations

from variability.experiments.comparison import CompareSettings, plan_cells
from variability.experiments.comparison.cells import cell_job


def test_cells_of_two_protocols_in_one_process_each_get_their_task(tmp_path):
    default = CompareSettings(params=640, depths=(2,), families=("han",), seeds=1, steps=2)
    paper = CompareSettings(
        params=3032, depths=(20,), families=("han",), seeds=1, steps=2, protocol="paper",
        han_layout="published", tolerance=0.1,
    )  # fmt: skip
    assert default.task_key != paper.task_key
    for settings, d_out in ((default, 1), (paper, 2)):
        task = settings.load_task()
        assert task.d_out == d_out
        (cell,) = plan_cells(settings, task.d_in, task.d_out)
        folder = tmp_path / settings.protocol
        record = cell_job(cell, settings, str(folder), "cpu")
        assert record["params"] == cell.params  # built on the task of its own protocol
    assert record["params"] == 90 + 930 + 17 * 60 + 930 + 62
