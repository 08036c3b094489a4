"""Running a comparison, or resuming it where it stopped, and reading one back.

Refusals come before anything is trained (a budget a family cannot meet, settings that differ
from the folder's). Finished cells are appended to ``results.jsonl`` as they end, so a rerun
with the same settings skips them, and a cell interrupted mid-training continues from its last
checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from variability.experiments.comparison.cells import run_cells
from variability.experiments.comparison.folder import (
    ResultsFile,
    check_settings,
    folder_lock,
    read_settings,
)
from variability.experiments.comparison.plan import Cell, plan_cells
from variability.experiments.comparison.settings import CompareError, CompareSettings
from variability.experiments.jobs import Executor, LocalExecutor
from variability.runs.run_dir import RunDirectory

CellDone = Callable[[Cell, dict[str, Any], bool], None]
"""``on_cell(cell, record, skipped)``: a cell finished now, or (skipped) had finished before."""
StepDone = Callable[[Cell, int], None]
"""``on_step(cell, step)``: the cell being trained reached ``step``."""


@dataclass
class Comparison:
    """A comparison's folder, settings and finished cells (in plan order)."""

    folder: Path
    settings: CompareSettings
    cells: list[Cell]
    records: list[dict[str, Any]] = field(default_factory=list)
    results_note: str | None = None  # lines of results.jsonl skipped as unreadable

    @property
    def baseline(self) -> float:
        """The test score of the best constant prediction (the majority class, the training
        mean): what a model collapsed to a constant scores."""
        return self.settings.load_task().baseline("test")

    @property
    def complete(self) -> bool:
        return len(self.records) == len(self.cells)

    def run_dir(self, record: dict[str, Any]) -> Path:
        return self.folder / record["run_dir"]

    def metrics(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """A finished cell's ``metrics.jsonl`` records (resume rule applied; [] if missing)."""
        run = RunDirectory(self.run_dir(record))
        return run.records() if run.metrics_file.exists() else []


def compare(
    settings: CompareSettings,
    folder: str | os.PathLike[str],
    *,
    device: str = "auto",
    workers: int | None = None,
    fresh: bool = False,
    on_plan: Callable[[list[Cell], int], None] | None = None,
    on_cell: CellDone | None = None,
    on_step: StepDone | None = None,
    executor: Executor | None = None,
) -> Comparison:
    """Run (or resume) a comparison in ``folder``; returns it with every cell's record.

    Refusals come before anything is trained: a budget a family cannot meet, settings that
    differ from the ones ``folder`` was started with. ``workers``: cells trained at once, each
    in its own process (default: one per CPU core on the CPU, one on a GPU). ``on_plan(cells,
    finished)`` is called once the plan is known. ``executor``: where the cells run (default:
    this machine's processes; ``executors.open_executor`` gives Ray) and what a failed cell
    does to the others.
    """
    executor = executor or LocalExecutor()
    target = executor.device(device)
    task = settings.load_task()
    cells = plan_cells(settings, task.d_in, task.d_out)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CompareError(f"cannot create {folder}: {error.strerror}") from None
    with folder_lock(folder):
        check_settings(folder, settings, fresh)
        results = ResultsFile(folder)
        done = results.finished()
        if on_plan is not None:
            on_plan(cells, sum(c.name in done for c in cells))
        pending = []
        for cell in cells:
            if cell.name in done:
                if on_cell is not None:
                    on_cell(cell, done[cell.name], True)
            else:
                pending.append(cell)

        def finished(cell: Cell, record: dict[str, Any]) -> None:
            results.append(record)
            done[cell.name] = record
            if on_cell is not None:
                on_cell(cell, record, False)

        # The deepest (slowest) first, so that parallel workers do not end on one long cell.
        pending.sort(key=lambda cell: -cell.depth)
        run_cells(pending, settings, folder, target, workers, finished, on_step, executor)
    records = [done[c.name] for c in cells if c.name in done]
    return Comparison(folder, settings, cells, records, results.note)


def load_comparison(folder: str | os.PathLike[str]) -> Comparison:
    """A comparison folder as it stands: settings, plan, finished cells (for the report)."""
    folder = Path(folder)
    settings = read_settings(folder)
    task = settings.load_task()
    cells = plan_cells(settings, task.d_in, task.d_out)
    results = ResultsFile(folder)
    done = results.finished()
    records = [done[c.name] for c in cells if c.name in done]
    return Comparison(folder, settings, cells, records, results.note)


__all__ = ["CellDone", "Comparison", "StepDone", "compare", "load_comparison"]
