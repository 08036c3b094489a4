"""``variability compare``: FC, LCW and Han at one parameter budget, over depths and seeds.

Every cell (family x depth x seed) is built at equal parameters, probed at initialisation,
trained with a Monitor, selected on the validation split and scored on the test split (one cell:
``variability.experiments.cells``). The comparison's folder holds::

    compare.json     the settings (a rerun with other settings is refused)
    results.jsonl    one line per finished cell, appended and synced as each finishes
    cells/NAME/      each cell's run directory (run.json, metrics.jsonl, model.pt, ...)
    report/          the comparison report (index.html and PNG figures)

A rerun with the same settings skips the cells already in ``results.jsonl``, and a cell that was
interrupted mid-training continues from its last checkpoint, so a killed comparison resumes
where it stopped. docs/compare.md documents the formats.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from variability.arch import (
    DEFAULT_TOLERANCE,
    FAMILIES,
    BudgetError,
    build_model,
    count_params,
    solve_width,
)
from variability.atomic import atomic_file
from variability.errors import UserError
from variability.runs.run_dir import RunDirectory
from variability.runs.trainer import OPTIMIZERS, TrainConfig

RESULTS = "results.jsonl"
SETTINGS = "compare.json"
CELLS = "cells"
REPORT = "report"
LOCK = ".lock"
FORMAT = "variability-comparison"
FORMAT_VERSION = 1


class CompareError(UserError):
    """A comparison that cannot run as asked: bad settings, a budget, another run's folder."""


@dataclass(frozen=True)
class Cell:
    """One model of the comparison: a family at a depth, sized to the budget, with a seed."""

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
    """Everything that decides a comparison's results (a rerun must match them to resume).

    ``tolerance`` is DEFINITIONS.md's rule: a family whose widest model within the budget falls
    more than 5% under it is refused. The other defaults are those of the quick comparison
    (``QUICK``, docs/compare.md says why), which alone admits models up to 25% under the budget.
    ``every``: record the probe's figures every this many steps (default: a tenth of the steps).
    """

    task: str = "checkerboard"
    params: int = 800
    depths: tuple[int, ...] = (2, 8, 32)
    families: tuple[str, ...] = FAMILIES
    seeds: int = 3
    steps: int = 500
    lr: float = 1e-2
    optimizer: str = "adam"
    batch_size: int = 512
    tolerance: float = DEFAULT_TOLERANCE
    every: int | None = None
    task_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("params", "seeds", "steps", "batch_size"):
            _check_int(name, getattr(self, name), 1)
        _check_int("task_seed", self.task_seed, 0)
        if self.every is not None:
            _check_int("every", self.every, 1)
        if not self.depths:
            raise CompareError("no depths to compare: give at least one, e.g. --depths 2,8,32")
        for depth in self.depths:
            _check_int("every depth", depth, 1)
        if len(set(self.depths)) != len(self.depths):
            raise CompareError(f"depths repeat: {','.join(map(str, self.depths))}")
        if not self.families:
            raise CompareError(f"no families to compare: choose from {', '.join(FAMILIES)}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise CompareError(
                f"unknown famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                f"known: {', '.join(FAMILIES)}"
            )
        if len(set(self.families)) != len(self.families):
            raise CompareError(f"families repeat: {','.join(self.families)}")
        if self.optimizer not in OPTIMIZERS:
            raise CompareError(
                f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}"
            )
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise CompareError(f"lr must be a finite number above 0, got {self.lr!r}")
        if not 0.0 <= self.tolerance < 1.0:
            raise CompareError(f"tolerance must be at least 0 and below 1, got {self.tolerance!r}")

    @property
    def record_every(self) -> int:
        return self.every or max(1, self.steps // 10)

    def train_config(self, seed: int) -> TrainConfig:
        """How every cell trains; ``seed`` orders its batches (the model's seed is its own)."""
        return TrainConfig(
            steps=self.steps,
            lr=self.lr,
            optimizer=self.optimizer,
            batch_size=self.batch_size,
            seed=seed,
            every=self.record_every,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["depths"] = list(self.depths)
        data["families"] = list(self.families)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompareSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("depths", "families"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CompareError(f"{name} must be an integer >= {minimum}, got {value!r}")


QUICK_TOLERANCE = 0.25
"""How far under the budget the quick comparison lets a model fall. At 32 hidden layers one width
step moves an FC net from 637 to 951 parameters (4 to 5 units), so no budget small enough for FC
to collapse fits FC, LCW and Han within 5%; the quick comparison admits 25% and prints every
exact count. A comparison that names its budget or depths keeps the 5% rule."""

QUICK = CompareSettings(tolerance=QUICK_TOLERANCE)
"""The quick comparison ``variability compare`` runs without arguments: FC, LCW and Han at 800
parameters, depths 2, 8 and 32, 3 seeds, 500 steps."""


# --- planning ----------------------------------------------------------------------------------


def plan_cells(settings: CompareSettings, d_in: int, d_out: int) -> list[Cell]:
    """Every cell of the comparison, sized at the budget, in the order they run (depth by depth,
    shallow first); sizes a family cannot meet are all refused at once, before anything runs.

    DEFINITIONS.md: each family takes the largest width whose count does not exceed the budget,
    and a family that cannot come within the tolerance of it is refused. The refusal lists every
    such (family, depth) with the nearest budget that would fit, instead of failing on the first.
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
            count = count_params(build_model(family, d_in, d_out, depth, width=width, seed=0))
            for seed in range(settings.seeds):
                cells.append(Cell(family, depth, seed, width, count))
    if refused:
        raise CompareError(_refusal(refused, settings))
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
                f"nearest feasible budget {error.nearest_budget:,}"
            )
        else:
            lines.append(
                f"{error.family} at depth {error.depth}: even its narrowest model has more than "
                f"{settings.params:,} parameters; nearest feasible budget "
                f"{error.nearest_budget:,}"
            )
    hint = (
        f" --tolerance {math.ceil(needed * 100 + 0.5) / 100:g} would admit the undersized ones,"
        if needed
        else ""
    )
    return (
        f"cannot size every model within {100 * settings.tolerance:g}% of {settings.params:,} "
        f"parameters: " + "; ".join(lines) + f".{hint} or choose other --params or --depths."
    )


# --- the folder --------------------------------------------------------------------------------


class ResultsFile:
    """``results.jsonl``: one line per finished cell, appended and synced as each finishes."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / RESULTS

    def finished(self) -> dict[str, dict[str, Any]]:
        """Finished cells by name; a torn line (a kill mid-write) is not a record."""
        done: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("type") == "cell" and "cell" in record:
                done[record["cell"]] = record
        return done

    def append(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
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
    """Record the settings, or check that the comparison in ``folder`` was started with them.

    ``fresh`` deletes what a previous comparison left there (its settings, results and cells;
    nothing else) and starts over.
    """
    path = folder / SETTINGS
    wanted = {"format": FORMAT, "format_version": FORMAT_VERSION, "settings": settings.to_json()}
    if fresh:
        for name in (RESULTS, SETTINGS):
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / CELLS, ignore_errors=True)
    elif path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            existing = None
        if not isinstance(existing, dict) or existing.get("format") != FORMAT:
            raise CompareError(
                f"{path} is not a comparison's settings file; use another --out, or --fresh to "
                "start a comparison there"
            )
        if existing != wanted:
            old = existing.get("settings") or {}
            new = wanted["settings"]
            differ = [
                f"{k} {_show(old.get(k))} -> {_show(new[k])}" for k in new if old.get(k) != new[k]
            ]
            raise CompareError(
                f"{folder} holds a comparison made with other settings "
                f"({'; '.join(differ) or 'another format version'}); rerun with its settings "
                "to resume it, use another --out, or add --fresh to start it over"
            )
        return
    elif (folder / RESULTS).exists() or (folder / CELLS).exists():
        raise CompareError(
            f"{folder} holds comparison results but no {SETTINGS}; use another --out, or --fresh "
            "to start over there"
        )
    with atomic_file(path) as stream:
        stream.write(json.dumps(wanted, indent=2) + "\n")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "default" if value is None else str(value)


def read_settings(folder: Path) -> CompareSettings:
    """The settings a comparison folder was made with."""
    path = Path(folder) / SETTINGS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return CompareSettings.from_json(data["settings"])
    except FileNotFoundError:
        raise CompareError(f"{folder} holds no comparison (no {SETTINGS})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise CompareError(f"{path} cannot be read ({type(error).__name__})") from None


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the comparison folder: a second compare writing into it at once is refused."""
    handle = (folder / LOCK).open("w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompareError(
                f"another `variability compare` is writing to {folder}; wait for it, or use "
                "another --out"
            ) from None
        yield
    finally:
        handle.close()


# --- running -----------------------------------------------------------------------------------

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

    @property
    def complete(self) -> bool:
        return len(self.records) == len(self.cells)

    def run_dir(self, record: dict[str, Any]) -> Path:
        return self.folder / record["run_dir"]

    def metrics(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """A finished cell's ``metrics.jsonl`` records (resume rule applied; [] if missing)."""
        run = RunDirectory(self.run_dir(record))
        return run.records() if run.metrics_file.exists() else []

    def learned_functions(
        self, seed: int = 0
    ) -> tuple[Any, dict[tuple[str, int], Any], tuple[float, float]] | None:
        """For a 2-D task: the target on the input grid and each (family, depth) model's output
        there (the model chosen on validation, of ``seed``), as NumPy images indexed [i, j]."""
        import torch

        from variability.arch import load_model
        from variability.experiments.cells import load_task_for

        task = load_task_for(self.settings)
        grid = task.grid
        if grid is None:
            return None
        images = {}
        for record in self.records:
            path = self.run_dir(record) / "model.pt"
            if record["seed"] != seed or not path.exists():
                continue
            model = load_model(path, device="cpu").eval()
            with torch.no_grad():
                outputs = model(grid.x)
            images[(record["family"], record["depth"])] = grid.image(outputs[:, 0]).numpy()
        return grid.image(grid.y).numpy(), images, (grid.low, grid.high)


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
) -> Comparison:
    """Run (or resume) a comparison in ``folder``; returns it with every cell's record.

    Refusals come before anything is trained: a budget a family cannot meet, settings that
    differ from the ones ``folder`` was started with. ``workers``: cells trained at once, each
    in its own process (default: one per CPU core on the CPU, one on a GPU). ``on_plan(cells,
    finished)`` is called once the plan is known.
    """
    from variability.devices import resolve_device
    from variability.experiments.cells import load_task_for, run_cells

    target = resolve_device(device)
    task = load_task_for(settings)
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
        run_cells(pending, settings, folder, target, workers, finished, on_step)
    return Comparison(folder, settings, cells, [done[c.name] for c in cells if c.name in done])


def load_comparison(folder: str | os.PathLike[str]) -> Comparison:
    """A comparison folder as it stands: settings, plan, finished cells (for the report)."""
    from variability.experiments.cells import load_task_for

    folder = Path(folder)
    settings = read_settings(folder)
    task = load_task_for(settings)
    cells = plan_cells(settings, task.d_in, task.d_out)
    done = ResultsFile(folder).finished()
    return Comparison(folder, settings, cells, [done[c.name] for c in cells if c.name in done])


__all__ = [
    "CELLS",
    "REPORT",
    "RESULTS",
    "SETTINGS",
    "Cell",
    "CompareError",
    "CompareSettings",
    "Comparison",
    "ResultsFile",
    "check_settings",
    "compare",
    "folder_lock",
    "load_comparison",
    "plan_cells",
    "read_settings",
]
