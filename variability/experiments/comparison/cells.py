"""One cell of a comparison, and running many: in this process, or one process per CPU core.

A cell builds its model at the budget, probes it at initialisation (per-site V and activation
ratio, output V, C2C, V3 for tasks of at most 3 inputs, pieces per line), trains it with the
trainer (a Monitor records the probe set every ``record_every`` steps), and returns one record for
``results.jsonl`` with the model chosen on validation scored on the test split.

Cells run through ``variability.experiments.jobs``: one intra-op thread each on the CPU, side by
side, one per core (that module says why).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from variability.arch import build_model, count_params
from variability.experiments.comparison.folder import CELLS
from variability.experiments.comparison.plan import Cell
from variability.experiments.comparison.settings import CompareSettings
from variability.experiments.jobs import local_pool, schedule, worker_count
from variability.probes import pieces_per_line, probe_model, v3
from variability.runs.run_dir import json_safe
from variability.runs.trainer import probe_set, train
from variability.tasks import Task

V3_MAX_INPUTS = 3
SITE_FIELDS = (
    "name",
    "depth",
    "kind",
    "units",
    "variability",
    "activation_ratio",
    "dead_fraction",
    "constant_fraction",
    "activation_shift",
    "status",
)


def probe_at_init(
    model: torch.nn.Module, task: Task, *, lines: int = 16, points: int = 512
) -> dict[str, Any]:
    """Figures of a freshly built model on the trainer's probe set (a 2-D task's whole grid)."""
    inputs = probe_set(task, 8192)
    results = probe_model(model, inputs, batch_size=8192, redundancy=False)
    site_rows = [{k: site.to_dict()[k] for k in SITE_FIELDS} for site in results.sites]
    record: dict[str, Any] = {
        "output_variability": None if results.output is None else results.output.variability,
        "network_collapsed": results.network_collapsed,
        "first_collapsed_site": results.first_collapsed_site,
        "first_collapsing_site": results.first_collapsing_site,
        "collapsed_level": results.thresholds.collapsed,
        "v3": v3(model, dim=task.d_in) if task.d_in <= V3_MAX_INPUTS else None,
        "pieces_per_line": pieces_per_line(model, inputs, lines=lines, points=points, seed=0).mean,
        "sites": site_rows,
    }
    return record


def run_cell(
    cell: Cell,
    settings: CompareSettings,
    task: Task,
    folder: Path,
    device: torch.device,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Build, probe at initialisation, train (resuming a cell's interrupted run), score."""
    started = time.perf_counter()
    dense = settings.dense_layers(cell.family, cell.depth) if cell.family == "han" else None
    model = build_model(
        cell.family,
        task.d_in,
        task.d_out,
        cell.depth,
        width=cell.width,
        seed=cell.seed,
        dense_layers=dense,
    )
    if count_params(model) != cell.params:  # the plan counted a model built the same way
        raise RuntimeError(f"{cell.name} has {count_params(model)} parameters, not {cell.params}")
    model.to(device)
    init = probe_at_init(model, task)
    probing = time.perf_counter() - started
    run_dir = Path(CELLS) / cell.name
    result = train(
        model,
        task,
        settings.train_config(cell.seed),
        folder / run_dir,
        resume=True,
        device=device,
        on_progress=None if on_step is None else lambda step, _info: on_step(step),
        quiet=True,
        extra_info={"comparison": {"cell": cell.name, "settings": settings.to_json()}},
    )
    record = {
        "type": "cell",
        "cell": cell.name,
        **asdict(cell),
        **init,
        "metric": result.metric,
        **{key: getattr(result, key) for key in ("train", "val", "test")},
        **{f"{key}_loss": getattr(result, f"{key}_loss") for key in ("train", "val", "test")},
        "best_step": result.best_step,
        "steps": result.steps,
        "trained_output_variability": result.output_variability,
        "trained_collapsed": result.network_collapsed,
        "run_dir": run_dir.as_posix(),
        "device": str(device),
        "seconds": round(probing + result.seconds, 3),  # training over every resume
    }
    return json_safe(record)


# --- running many cells ------------------------------------------------------------------------

Finished = Callable[[Cell, dict[str, Any]], None]
Stepped = Callable[[Cell, int], None]


def run_cells(
    cells: list[Cell],
    settings: CompareSettings,
    folder: Path,
    device: torch.device,
    workers: int | None,
    finished: Finished,
    on_step: Stepped | None = None,
) -> None:
    """Run ``cells``, calling ``finished(cell, record)`` in this process as each one ends.

    With one worker the cells run here, one after another; with more, each runs in a worker
    process (``experiments.jobs``) and this process writes the results; the workers report
    their steps through a queue. The first error stops new cells from starting; cells already
    running finish and are kept.
    """
    if not cells:
        return
    count = worker_count(workers, device, len(cells))
    if count == 1:
        task = settings.load_task()
        here = local_pool(1, device)
        schedule(
            here,
            cells,
            lambda cell: here.submit(
                run_cell, cell, settings, task, folder, device, _bind(on_step, cell)
            ),
            finished,
        )
        return
    messages = multiprocessing.get_context("spawn").Queue()
    by_name = {cell.name: cell for cell in cells}
    pool = local_pool(count, device, initializer=_start_worker, initargs=(messages,))
    schedule(
        pool,
        cells,
        lambda cell: pool.submit(_worker_cell, cell, settings, str(folder), str(device)),
        finished,
        poll=lambda: _drain(messages, by_name, on_step),
    )


def _bind(on_step: Stepped | None, cell: Cell) -> Callable[[int], None] | None:
    return None if on_step is None else lambda step: on_step(cell, step)


def _drain(messages: Any, by_name: dict[str, Cell], on_step: Stepped | None) -> None:
    while True:
        try:
            name, step = messages.get_nowait()
        except queue.Empty:
            return
        if on_step is not None and name in by_name:
            on_step(by_name[name], step)


# --- inside a worker process -------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
PROGRESS_INTERVAL = 0.25
"""Seconds between a worker's progress messages (each cell's last step is always sent)."""


def _start_worker(messages: Any) -> None:
    _WORKER.update(messages=messages, parent=os.getppid(), tasks={})


def _worker_cell(cell: Cell, settings: CompareSettings, folder: str, device: str) -> dict[str, Any]:
    key = (settings.task, settings.task_seed)
    tasks = _WORKER["tasks"]
    if key not in tasks:
        tasks[key] = settings.load_task()
    last = [0.0]

    def on_step(step: int) -> None:
        if os.getppid() != _WORKER["parent"]:
            os._exit(1)  # the comparison was killed (not Linux): leave the cell to be resumed
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or step == settings.steps:
            last[0] = now
            _WORKER["messages"].put((cell.name, step))

    return run_cell(cell, settings, tasks[key], Path(folder), torch.device(device), on_step)


__all__ = ["probe_at_init", "run_cell", "run_cells"]
