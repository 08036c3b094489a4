"""``variability compare``: FC, LCW and Han at one parameter budget, over depths and seeds.

Every cell (family x depth x seed) is built at equal parameters, probed at initialisation,
trained with a Monitor, selected on the validation split and scored on the test split. Each
finished cell is appended to ``results.jsonl`` at once, so an interrupted comparison resumes where
it stopped: a rerun with the same settings skips the cells already there.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from variability.arch import BudgetError, build_model, count_params, solve_width
from variability.errors import UserError
from variability.probes import pieces_per_line, probe_model, v3
from variability.tasks import Task

RESULTS = "results.jsonl"
SETTINGS = "compare.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Cell:
    """One model of the comparison."""

    family: str
    depth: int
    seed: int
    width: int
    params: int

    @property
    def name(self) -> str:
        return f"{self.family}-d{self.depth}-s{self.seed}"


@dataclass(frozen=True)
class CompareSettings:
    """Everything that decides a comparison's results (a rerun must match to resume)."""

    task: str = "checkerboard"
    params: int = 4500
    depths: tuple[int, ...] = (1, 2, 4, 8)
    families: tuple[str, ...] = ("fc", "lcw", "han")
    seeds: int = 2
    steps: int = 600
    lr: float = 3e-3
    optimizer: str = "adam"
    batch_size: int = 128
    tolerance: float = 0.05
    monitor_every: int = 50
    task_seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["depths"] = list(self.depths)
        data["families"] = list(self.families)
        return data


def plan_cells(settings: CompareSettings, d_in: int, d_out: int) -> list[Cell]:
    """Every cell of the comparison, sized at the budget; infeasible sizes are refused at once.

    DEFINITIONS.md: each family takes the largest width whose count does not exceed the budget,
    and a family that cannot come within the tolerance of it is refused. We list every such
    (family, depth) with what it would take, instead of failing on the first.
    """
    cells: list[Cell] = []
    refused: list[BudgetError] = []
    for depth in settings.depths:
        for family in settings.families:
            try:
                width = solve_width(
                    family, settings.params, depth, d_in, d_out, tolerance=settings.tolerance
                )
            except BudgetError as error:
                refused.append(error)
                continue
            model = build_model(family, d_in, d_out, depth, width=width, seed=0)
            for seed in range(settings.seeds):
                cells.append(Cell(family, depth, seed, width, count_params(model)))
    if refused:
        raise UserError(_refusal(refused, settings))
    return cells


def _refusal(refused: list[BudgetError], settings: CompareSettings) -> str:
    lines = []
    needed = 0.0
    for error in refused:
        if error.count is not None:
            short = 1.0 - error.count / settings.params
            needed = max(needed, short)
            lines.append(
                f"{error.family} at depth {error.depth}: the largest model within "
                f"{settings.params:,} parameters has {error.count:,} ({100 * short:.1f}% under); "
                f"nearest budget that fits: {error.nearest_budget:,}"
            )
        else:
            lines.append(
                f"{error.family} at depth {error.depth}: even the narrowest model exceeds "
                f"{settings.params:,} parameters (smallest budget: {error.nearest_budget:,})"
            )
    hint = (
        f" --tolerance {math.ceil(needed * 100 + 0.5) / 100:g} would admit the undersized ones;"
        if needed
        else ""
    )
    return (
        f"cannot size every model within {100 * settings.tolerance:g}% of {settings.params:,} "
        f"parameters: " + "; ".join(lines) + f".{hint} or choose other --params or --depths."
    )


def probe_inputs(task: Task) -> torch.Tensor:
    """The fixed probe set: the whole input grid for 2-D tasks, else the training inputs."""
    return task.grid.x if task.grid is not None else task.x_train


def probe_at_init(
    model: torch.nn.Module, task: Task, *, lines: int = 16, points: int = 512
) -> dict[str, Any]:
    """Figures of a freshly built model on the probe set, V3 for low-dimensional inputs."""
    inputs = probe_inputs(task)
    results = probe_model(model, inputs, batch_size=4096, redundancy=False)
    record: dict[str, Any] = {
        "output_variability": results.output.variability if results.output else None,
        "network_collapsed": results.network_collapsed,
        "first_collapsed_site": results.first_collapsed_site,
        "first_collapsing_site": results.first_collapsing_site,
        "sites": [
            {
                key: site.to_dict()[key]
                for key in (
                    "name",
                    "depth",
                    "kind",
                    "variability",
                    "activation_ratio",
                    "dead_fraction",
                    "constant_fraction",
                    "activation_shift",
                    "status",
                )
            }
            for site in results.sites
        ],
        "v3": v3(model, dim=task.d_in) if task.d_in <= 3 else None,
    }
    pieces = pieces_per_line(model, inputs, lines=lines, points=points, seed=0)
    record["pieces_per_line"] = pieces.mean
    return record


class ResultsFile:
    """``results.jsonl``: one line per finished cell, appended and flushed as each finishes."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RESULTS

    def finished(self) -> dict[str, dict[str, Any]]:
        """Finished cells by name; a torn last line (a kill mid-write) is ignored."""
        done: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("type") == "cell":
                done[record["cell"]] = record
        return done

    def append(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, allow_nan=False) + "\n"
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    text = "\n" + text  # a torn line from a killed run stays on its own line
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def check_settings(folder: Path, settings: CompareSettings, fresh: bool) -> None:
    """Record the settings, or check a resumed comparison was started with the same ones."""
    path = folder / SETTINGS
    wanted = {"format_version": FORMAT_VERSION, "settings": settings.to_json()}
    if path.exists() and not fresh:
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            existing = None
        if existing != wanted:
            old = (existing or {}).get("settings", {})
            differ = sorted(k for k in wanted["settings"] if old.get(k) != wanted["settings"][k])
            raise UserError(
                f"{folder} holds a comparison made with other settings "
                f"({', '.join(differ) or 'unreadable compare.json'}); use another --out, or "
                "--fresh to start it over"
            )
        return
    if fresh:
        for name in (RESULTS, SETTINGS):
            (folder / name).unlink(missing_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


CellRunner = Callable[[Cell, Path], dict[str, Any]]


def run_cells(
    cells: Iterable[Cell],
    folder: Path,
    run_cell: CellRunner,
    on_cell: Callable[[Cell, dict[str, Any], bool], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the cells not yet in results.jsonl, appending each as it finishes; all records."""
    results = ResultsFile(folder)
    done = results.finished()
    records = []
    for cell in cells:
        if cell.name in done:
            record = done[cell.name]
            if on_cell:
                on_cell(cell, record, True)
        else:
            start = time.perf_counter()
            record = {"type": "cell", "cell": cell.name, **asdict(cell)}
            record.update(run_cell(cell, folder / "cells" / cell.name))
            record["seconds"] = round(time.perf_counter() - start, 3)
            results.append(record)
            if on_cell:
                on_cell(cell, record, False)
        records.append(record)
    return records
