"""Variability at initialisation as a predictor of the trained result (Zhang & Yu, 2105.08911).

Claim: at a fixed parameter count, how trainable an MLP is tracks its variability. Over every
cell of a ``variability compare`` run (family x depth x seed, all at one budget), we take the
output's V at initialisation and the final test metric (of the checkpoint chosen on validation),
and report Spearman's rank correlation between them with a bootstrap confidence interval.

The interval: cells are resampled with replacement (``resamples`` times, from a seeded NumPy
generator), Spearman's rho is computed on each resample, and the interval is the 2.5th and
97.5th percentiles of those (the percentile bootstrap). Resamples in which either column is
constant have no rank correlation and are left out (their number is reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from variability.errors import UserError
from variability.experiments.comparison import (
    CompareSettings,
    ResultsFile,
    compare,
    plan_cells,
    read_settings,
)
from variability.experiments.reproductions.base import (
    Advance,
    Options,
    Outcome,
    Reproduction,
    claims_frame,
)

NAME = "predictor"
PAPER = (
    'Zhang & Yu, "Variability of Artificial Neural Networks" (arXiv 2105.08911; v3: '
    '"Multi-layer Perceptron Trainability Explained via Variability")'
)
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
MIN_CELLS = 4


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho of two columns, its bootstrap interval and what it was computed from."""

    rho: float
    p_value: float
    low: float
    high: float
    cells: int
    resamples: int
    dropped: int
    level: float = LEVEL


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho (ties get average ranks); NaN when either column is constant."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) < 2 or np.all(xs == xs[0]) or np.all(ys == ys[0]):
        return math.nan
    return float(stats.spearmanr(xs, ys).statistic)


def rank_correlation(
    x: ArrayLike,
    y: ArrayLike,
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> RankCorrelation:
    """Spearman's rho of paired values with a percentile-bootstrap interval (see the module)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("rank_correlation needs two columns of the same length")
    rho = spearman(xs, ys)
    p_value = math.nan if math.isnan(rho) else float(stats.spearmanr(xs, ys).pvalue)
    generator = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        rows = generator.integers(0, len(xs), len(xs))
        value = spearman(xs[rows], ys[rows])
        if not math.isnan(value):
            values.append(value)
    tail = 100 * (1 - level) / 2
    low, high = (
        (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
        if values
        else (math.nan, math.nan)
    )
    return RankCorrelation(
        rho=rho,
        p_value=p_value,
        low=low,
        high=high,
        cells=len(xs),
        resamples=resamples,
        dropped=resamples - len(values),
        level=level,
    )


TOLERANCE = 0.25
"""How far under the budget this comparison lets a model fall: at 64 hidden layers one width step
changes an FC or LCW net's count by a fifth or more."""


def settings_for(options: Options) -> CompareSettings:
    """The comparison to run: compare's larger documented one (docs/compare.md), or a tiny one.

    Its training is written out (500 steps of Adam, lr 0.01, batch 512), not taken from the
    quick comparison's defaults, which may change."""
    smoke = options.smoke
    return CompareSettings(
        params=800 if smoke else 3000,
        depths=(2, 8) if smoke else (2, 4, 8, 16, 32, 64),
        seeds=options.seed_count(1, 1) if smoke else options.seed_count(3, 3),
        steps=10 if smoke else 500,
        lr=1e-2,
        optimizer="adam",
        batch_size=512,
        tolerance=TOLERANCE,
    )


def units(options: Options) -> int:
    if options.compare is not None:
        return 0
    settings = settings_for(options)
    return len(plan_cells(settings, 2, 1)) if settings.task == "checkerboard" else 0


def read_cells(folder: Path) -> tuple[pd.DataFrame, CompareSettings]:
    """The finished cells of a comparison folder, sorted by name, and its settings."""
    settings = read_settings(folder)
    # In a fixed order (results.jsonl has them in the order they finished, which depends on the
    # workers), so that the seeded bootstrap draws the same resamples from the same cells.
    finished = ResultsFile(folder).finished()
    cells = [finished[name] for name in sorted(finished)]
    if len(cells) < MIN_CELLS:
        raise UserError(
            f"{folder} holds {len(cells)} finished cell(s); a rank correlation with a "
            f"confidence interval needs at least {MIN_CELLS}"
        )
    return pd.DataFrame(cells), settings


def run_comparison(
    options: Options, advance: Advance
) -> tuple[pd.DataFrame, CompareSettings, Path]:
    if options.compare is not None:
        frame, settings = read_cells(options.compare)
        return frame, settings, options.compare
    settings = settings_for(options)
    folder = options.folder / "compare"
    compare(
        settings,
        folder,
        device=str(options.device),
        workers=options.workers,
        on_cell=lambda _cell, _record, _skipped: advance(1),
        executor=options.executor,
    )
    frame, settings = read_cells(folder)
    return frame, settings, folder


def correlations(frame: pd.DataFrame, resamples: int) -> pd.DataFrame:
    """Spearman's rho over all cells, and within each family."""
    rows = []
    groups: list[tuple[str, pd.DataFrame]] = [("all cells", frame)]
    groups += [
        (f"family {family}", part)
        for family, part in frame.groupby("family", sort=False)
        if len(part) >= MIN_CELLS
    ]
    for label, part in groups:
        result = rank_correlation(part["output_variability"], part["test"], resamples=resamples)
        rows.append(
            {
                "cells": label,
                "n": result.cells,
                "Spearman rho": result.rho,
                f"{100 * result.level:.0f}% CI low": result.low,
                f"{100 * result.level:.0f}% CI high": result.high,
                "p-value": result.p_value,
                "resamples dropped": result.dropped,
            }
        )
    return pd.DataFrame(rows)


def interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "undefined (every resample had a constant column)"
    return f"[{low:.2f}, {high:.2f}]"


def run(options: Options, advance: Advance) -> Outcome:
    from variability.reports.figures.reproductions import rank_scatter

    frame, settings, folder = run_comparison(options, advance)
    frame = frame.dropna(subset=["output_variability", "test"]).reset_index(drop=True)
    resamples = options.pick(RESAMPLES, 200)
    table = correlations(frame, resamples)
    overall = table.iloc[0]
    low, high = overall.iloc[3], overall.iloc[4]
    metric = str(frame["metric"].iloc[0]) if "metric" in frame else "test metric"
    ci = interval(low, high)
    claim_rows = [
        (
            "Trainability tracks variability (rank correlation of output V at initialisation "
            f"with the final test {metric}, over {len(frame)} cells)",
            "trainability tracks variability",
            f"Spearman rho {overall['Spearman rho']:.2f}, 95% CI {ci}",
            bool(low > 0) if not math.isnan(low) else None,
        )
    ]
    sentences = [
        f"Over {len(frame)} cells of the comparison in {folder} ({', '.join(settings.families)} "
        f"at {settings.params:,} parameters, depths {', '.join(map(str, settings.depths))}, "
        f"{settings.seeds} seed(s), {settings.steps} steps): Spearman's rho between the output's "
        f"V at initialisation and the test {metric} is {overall['Spearman rho']:.3f}, "
        f"95% bootstrap interval {ci} ({resamples} resamples of the cells, seed "
        f"{BOOTSTRAP_SEED}; {int(overall['resamples dropped'])} with a constant column left out).",
        "'Holds' needs the whole interval above 0.",
    ]
    for row in table.iloc[1:].to_dict(orient="records"):
        sentences.append(
            f"Within {row['cells']} ({row['n']} cells): rho {row['Spearman rho']:.3f}, "
            f"interval {interval(row['95% CI low'], row['95% CI high'])}."
        )
    scatter = rank_scatter(
        frame,
        "output_variability",
        "test",
        "output V at initialisation (log)",
        f"test {metric} (checkpoint chosen on validation)",
        "family",
        title=f"Spearman rho {overall['Spearman rho']:.2f}, 95% CI {ci}",
    )
    columns = ["cell", "family", "depth", "seed", "width", "params", "output_variability"]
    columns += ["network_collapsed", "test"]
    records = frame[[c for c in columns if c in frame]].to_dict(orient="records")
    return Outcome(
        name=NAME,
        title="variability at initialisation as a predictor of the test metric",
        paper=PAPER,
        claims=claims_frame(claim_rows),
        table=table,
        table_caption=(
            f"Spearman's rank correlation between output V at initialisation and the test "
            f"{metric}, with a {100 * LEVEL:.0f}% percentile-bootstrap interval over cells."
        ),
        findings=sentences,
        settings={
            "comparison": str(folder),
            "task": settings.task,
            "families": list(settings.families),
            "budget": settings.params,
            "depths": list(settings.depths),
            "seeds": settings.seeds,
            "training": f"{settings.steps} steps of {settings.optimizer} (lr {settings.lr:g}, "
            f"batch {settings.batch_size}); checkpoint chosen on validation",
            "bootstrap": f"{resamples} resamples of the cells, percentile interval, NumPy "
            f"default_rng({BOOTSTRAP_SEED})",
            "device": str(options.device),
        },
        deviations=[
            "The paper relates variability to trainability across its own MLP experiments; "
            "here the cells are those of one `variability compare` run (FC-ReLU, LCW-sigmoid and "
            "Han at one budget), and the predictor is the toolkit's output V on the probe set, "
            "not the paper's V3.",
            "Training is short (the comparison's steps), so the test metric measures early "
            "trainability.",
        ],
        records=records,
        figures=[
            (
                scatter,
                "variability_against_test",
                "Each cell's test metric against its output V at initialisation (V below 1e-4 "
                "drawn at 1e-4).",
            )
        ],
        glossary=("Variability (V)", "Collapse to constants (C2C)"),
        smoke=options.smoke,
    )


REPRODUCTION = Reproduction(
    name=NAME,
    title="Variability at initialisation as a predictor of the test metric",
    paper=PAPER,
    units=units,
    run=run,
)

__all__ = ["NAME", "REPRODUCTION", "RankCorrelation", "rank_correlation", "spearman"]
