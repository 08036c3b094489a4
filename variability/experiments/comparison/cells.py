"""One cell of a comparison, and running many: in this process, or one process per CPU core.

A cell builds its model at the budget (with a remedy's initialisation if its init is not the
default; see ``initialize``), probes it at initialisation (per-site V and activation
ratio, output V, C2C, V3 for tasks of at most 3 inputs, pieces per line), trains it with the
trainer (a Monitor records the probe set every ``record_every`` steps), and returns one record for
``results.jsonl`` with the model chosen on validation scored on the test split.

Cells run through ``variability.experiments.jobs`` on the executor the command was given (this
machine's processes, or Ray): the same job function everywhere, which asks ``in_job`` where to
write its run directory and tells the driver its steps.
"""

from __future__ import annotations

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
from variability.experiments.in_job import job_dir, tell
from variability.experiments.jobs import Executor, Job, LocalExecutor
from variability.probes import pieces_per_line, probe_model, v3
from variability.remedy import RemedyError, reinitialize
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


def initialize(model: torch.nn.Module, init: str, task: Task) -> str | None:
    """Apply the cell's init to the freshly built ``model`` in place: nothing for "default", the
    remedy method otherwise. Returns None, or why the remedy failed: then the model is kept as
    built (``reinitialize`` leaves it unchanged when it raises) and trains anyway, and the cell's
    record says ``init_failed``, so that one model the remedy cannot fix neither stops the
    comparison nor passes for a remedied one.
    """
    if init == "default":
        return None
    # The remedy looks at inputs only, never at labels; it is given the training inputs (not the
    # test split, nor the grid the probe reads), so that nothing the model is fitted on comes
    # from the data it is scored or judged on.
    try:
        reinitialize(model, task.x_train, method=init)
    except RemedyError as error:
        return str(error)
    return None


def run_cell(
    cell: Cell,
    settings: CompareSettings,
    task: Task,
    folder: Path,
    device: torch.device,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Build, initialise (the cell's init), probe at initialisation, train (resuming a cell's
    interrupted run), score."""
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
    init_failed = initialize(model, cell.init, task)
    model.to(device)
    init = probe_at_init(model, task)
    probing = time.perf_counter() - started
    run_dir = Path(CELLS) / cell.name
    result = train(
        model,
        task,
        settings.train_config(cell.seed),
        job_dir(folder / run_dir),
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
        **({} if cell.init == "default" else {"init_failed": init_failed}),
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
    executor: Executor | None = None,
) -> None:
    """Run ``cells`` on ``executor`` (default: this machine's processes), calling
    ``finished(cell, record)`` in this process as each one ends, and ``on_step(cell, step)`` as
    the cells being trained report their steps. Failures follow the executor's rule
    (``jobs.schedule``); finished cells are kept either way.
    """
    by_name = {cell.name: cell for cell in cells}

    def on_message(name: str, step: Any) -> None:
        if on_step is not None and name in by_name:
            on_step(by_name[name], step)

    (executor or LocalExecutor()).run(
        cells,
        lambda cell: Job(
            cell.name,
            cell_job,
            (cell, settings, str(folder), str(device)),
            writes=folder / CELLS / cell.name,
        ),
        finished,
        device=device,
        workers=workers,
        on_message=on_message,
    )


# --- the job, wherever it runs -----------------------------------------------------------------

_TASKS: dict[tuple[Any, ...], Task] = {}
"""Tasks loaded in this process, by ``CompareSettings.task_key``: a worker loads each once."""
PROGRESS_INTERVAL = 0.25
"""Seconds between a cell's progress messages (its last step is always sent)."""


def cell_job(cell: Cell, settings: CompareSettings, folder: str, device: str) -> dict[str, Any]:
    """``run_cell`` as a job: the task loaded once per process, steps told to the driver."""
    key = settings.task_key
    if key not in _TASKS:
        _TASKS[key] = settings.load_task()
    last = [0.0]

    def on_step(step: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or step == settings.steps:
            last[0] = now
            tell(step)

    return run_cell(cell, settings, _TASKS[key], Path(folder), torch.device(device), on_step)


__all__ = ["cell_job", "probe_at_init", "run_cell", "run_cells"]
