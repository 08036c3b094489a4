"""What the comparison report draws, read from a comparison's folder.

``variability.reports.comparison_report`` draws plain data (``ComparisonData``) and reads no
folder; this module reads one: the cells' records, each cell's ``metrics.jsonl``, and, for a
2-D task, each chosen model's output on the input grid (which loads and runs the models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from variability.arch import load_model
from variability.experiments.comparison.folder import RESULTS
from variability.experiments.comparison.run import Comparison
from variability.probes.evaluation import predict
from variability.reports.comparison_report import ComparisonData, write_comparison_report
from variability.reports.provenance import command_line, provenance
from variability.reports.style import series_label
from variability.runs.run_dir import records_frame


@dataclass(frozen=True)
class LearnedFunctions:
    """A 2-D task's target and each (family, depth) model's output on the input grid, as
    images indexed [i, j]; ``extent`` is the grid's box (low, high) on both axes. Where the
    comparison's inits are a factor, the family is a label naming the init (``FC · lsuv``)."""

    target: np.ndarray
    images: dict[tuple[str, int], np.ndarray]
    extent: tuple[float, float]


def learned_functions(comparison: Comparison, seed: int = 0) -> LearnedFunctions | None:
    """For a 2-D task, the function each finished model of ``seed`` learned (the checkpoint
    chosen on validation, ``model.pt``); None for a task without an input grid."""
    grid = comparison.settings.load_task().grid
    if grid is None:
        return None
    images = {}
    named = comparison.settings.varies_init
    for record in comparison.records:
        path = comparison.run_dir(record) / "model.pt"
        if record["seed"] != seed or not path.exists():
            continue
        outputs = predict(load_model(path, device="cpu"), grid.x)
        init = record.get("init") or "default"
        row = series_label(record["family"], init, True) if named else record["family"]
        images[(row, record["depth"])] = grid.image(outputs[:, 0]).numpy()
    return LearnedFunctions(grid.image(grid.y).numpy(), images, (grid.low, grid.high))


def report_data(comparison: Comparison) -> ComparisonData:
    """Read what the report draws from a comparison's folder."""
    learned = learned_functions(comparison)
    records = comparison.records
    task = comparison.settings.load_task()
    devices = sorted({str(r.get("device")) for r in records if r.get("device")})
    return ComparisonData(
        settings=comparison.settings.to_json(),
        cells=records,
        planned=len(comparison.cells),
        metric=metric_name(records),
        runs={r["cell"]: records_frame(comparison.metrics(r)) for r in records},
        learned={} if learned is None else learned.images,
        target=None if learned is None else learned.target,
        extent=(-1.0, 1.0) if learned is None else learned.extent,
        provenance=provenance(
            command=command_line(),
            device=", ".join(devices) or None,
            results=str(comparison.folder / RESULTS),
        ),
        baseline={split: task.baseline(split) for split in ("val", "test")},
    )


def metric_name(records: list[dict[str, Any]]) -> str:
    """The task's metric (``accuracy``, ``r2``) as the cells recorded it."""
    return next((str(r["metric"]) for r in records if r.get("metric")), "metric")


def write_report(comparison: Comparison, folder: Path, *, self_contained: bool = False) -> Path:
    """Draw the comparison's report into ``folder`` (index.html and PNGs); returns index.html."""
    return write_comparison_report(report_data(comparison), folder, self_contained=self_contained)


__all__ = ["LearnedFunctions", "learned_functions", "metric_name", "report_data", "write_report"]
