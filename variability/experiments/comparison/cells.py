"""One cell of a comparison, and running many: in this process, or one process per CPU core.

A cell builds its model at the budget, probes it at initialisation (per-site V and activation
ratio, output V, C2C, V3 for tasks of at most 3 inputs, pieces per line), trains it with the
trainer (a Monitor records the probe set every ``record_every`` steps), and returns one record for
``results.jsonl`` with the model chosen on validation scored on the test split.

On the CPU every cell runs with one intra-op thread, and cells run side by side, one per core.
The models are small, so a step is bound by per-operation overhead, not arithmetic: a second
thread per operation buys nothing, and on a busy machine its spin-waiting made a 4-unit,
32-layer cell three times slower. One thread per cell also makes the results independent of
how many cells run at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from variability.arch import build_model, count_params
from variability.experiments.comparison.folder import CELLS
from variability.experiments.comparison.plan import Cell
from variability.experiments.comparison.settings import CompareSettings
from variability.probes import pieces_per_line, probe_model, v3
from variability.runs.run_dir import json_safe
from variability.runs.trainer import probe_set, train
from variability.tasks import Task

MAX_WORKERS = 8
"""Beyond this many processes, each importing torch, memory grows faster than throughput."""

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
    model = build_model(
        cell.family, task.d_in, task.d_out, cell.depth, width=cell.width, seed=cell.seed
    )
    if count_params(model) != cell.params:  # the plan counted a model built the same way
        raise RuntimeError(f"{cell.name} has {count_params(model)} parameters, not {cell.params}")
    model.to(device)
    init = probe_at_init(model, task)
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
        "seconds": round(time.perf_counter() - started, 3),
    }
    return json_safe(record)


# --- running many cells ------------------------------------------------------------------------

Finished = Callable[[Cell, dict[str, Any]], None]
Stepped = Callable[[Cell, int], None]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(requested: int | None, device: torch.device, cells: int) -> int:
    """Cells trained at once: one per core on the CPU (at most 8), one on a GPU."""
    if requested is None:
        requested = 1 if device.type != "cpu" else min(usable_cores(), MAX_WORKERS)
    return max(1, min(requested, cells))


@contextlib.contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    process (spawned: a forked torch is not safe) and this process writes the results. The
    first error stops new cells from starting; cells already running finish and are kept.
    """
    if not cells:
        return
    count = worker_count(workers, device, len(cells))
    threads = 1 if device.type == "cpu" else None
    if count == 1:
        task = settings.load_task()
        context = intra_op_threads(threads) if threads else contextlib.nullcontext()
        with context:
            for cell in cells:
                stepped = None if on_step is None else _bind(on_step, cell)
                finished(cell, run_cell(cell, settings, task, folder, device, stepped))
        return
    _run_in_workers(cells, settings, folder, device, count, threads, finished, on_step)


def _bind(on_step: Stepped, cell: Cell) -> Callable[[int], None]:
    return lambda step: on_step(cell, step)


def _run_in_workers(
    cells: list[Cell],
    settings: CompareSettings,
    folder: Path,
    device: torch.device,
    count: int,
    threads: int | None,
    finished: Finished,
    on_step: Stepped | None,
) -> None:
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    by_name = {cell.name: cell for cell in cells}
    pool = ProcessPoolExecutor(
        count,
        mp_context=context,
        initializer=_start_worker,
        initargs=(messages, threads, os.getpid()),
    )
    schedule(
        pool,
        cells,
        lambda cell: pool.submit(_worker_cell, cell, settings, str(folder), str(device)),
        finished,
        limit=count,
        poll=lambda: _drain(messages, by_name, on_step),
    )


def schedule(
    pool: ProcessPoolExecutor,
    items: list[Any],
    submit: Callable[[Any], Future[Any]],
    finished: Callable[[Any, Any], None],
    *,
    limit: int,
    poll: Callable[[], None] | None = None,
) -> None:
    """Run ``items`` in ``pool``, at most ``limit`` at once, ``finished(item, result)`` as each
    ends (``poll`` between waits of 0.2 s). The first error stops new items from starting and is
    raised once the running ones have ended; an interrupt cancels what has not started. The pool
    is shut down either way."""
    waiting = list(items)
    running: dict[Future[Any], Any] = {}
    error: BaseException | None = None
    try:
        while waiting or running:
            while waiting and len(running) < limit and error is None:
                item = waiting.pop(0)
                with _main_module_hidden():  # submit starts the worker processes
                    running[submit(item)] = item
            ended, _ = wait(running, timeout=0.2 if poll else None, return_when=FIRST_COMPLETED)
            if poll is not None:
                poll()
            for future in ended:
                item = running.pop(future)
                try:
                    result = future.result()
                except BaseException as failure:
                    error = error or failure
                    waiting.clear()
                    continue
                finished(item, result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if error is not None:
        raise error


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start workers without the script that started this process.

    A spawned worker imports ``__main__`` again unless it has no file or spec. Workers need
    nothing from it, and for the ``variability`` command it is the whole command line (typer,
    pandas, matplotlib: seconds per worker); a user's script without an ``if __name__ ==
    "__main__"`` guard would even run again in every worker.
    """
    main = sys.modules.get("__main__")
    saved = {key: getattr(main, key) for key in ("__file__", "__spec__") if hasattr(main, key)}
    try:
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


def _drain(messages: Any, by_name: dict[str, Cell], on_step: Stepped | None) -> None:
    while True:
        try:
            name, step = messages.get_nowait()
        except queue.Empty:
            return
        if on_step is not None and name in by_name:
            on_step(by_name[name], step)


_WORKER: dict[str, Any] = {}
PROGRESS_INTERVAL = 0.25
"""Seconds between a worker's progress messages (each cell's last step is always sent)."""


def _start_worker(messages: Any, threads: int | None, parent: int) -> None:
    _die_with(parent)
    if threads:
        torch.set_num_threads(threads)
    _WORKER.update(messages=messages, parent=parent, tasks={})


def _die_with(parent: int) -> None:
    """Ask Linux to kill this worker when the comparison's process dies (even by SIGKILL), so
    no orphan goes on training a cell that a resumed comparison is about to train again."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the step callback checks the parent instead
        pass
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _worker_cell(cell: Cell, settings: CompareSettings, folder: str, device: str) -> dict[str, Any]:
    key = (settings.task, settings.task_seed)
    tasks = _WORKER["tasks"]
    if key not in tasks:
        tasks[key] = settings.load_task()
    last = [0.0]

    def on_step(step: int) -> None:
        if os.getppid() != _WORKER["parent"]:
            os._exit(1)  # the comparison was killed: leave the cell to be resumed
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or step == settings.steps:
            last[0] = now
            _WORKER["messages"].put((cell.name, step))

    return run_cell(cell, settings, tasks[key], Path(folder), torch.device(device), on_step)


__all__ = ["probe_at_init", "run_cell", "run_cells", "usable_cores", "worker_count"]
