"""Variability against depth at a fixed parameter count (Zhang & Yu, arXiv 2105.08911).

Claims: at a fixed parameter count, an MLP's variability first rises with depth, peaks, then falls
as collapse to constants (C2C) sets in; the absolute value activation resists C2C better than ReLU.
We build ReLU MLPs, absolute-value MLPs and HanNets at two budgets and depths 1 to 128, and
measure at initialisation only, over many seeds: the output's V, V3 and the C2C verdict on the
checkerboard's 6,561 grid points (the probe set), and the mean activation ratio of the hidden
sites.

Sizing: each model takes the largest width whose count does not exceed the budget. Deep models
cannot come within 5% of it (at depth 128 one width step of an FC net costs 127 (2w + 2)
parameters), so every row prints its exact count and its share of the budget rather than being
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from variability.arch import BudgetError, build_model, count_params, solve_width
from variability.experiments.reproductions.base import (
    Advance,
    Options,
    Outcome,
    Reproduction,
    claims_frame,
    mean_std,
    run_models,
)
from variability.probes import probe_model, v3
from variability.tasks import load_task

NAME = "variability-depth"
PAPER = 'Zhang & Yu, "Variability of Artificial Neural Networks" (arXiv 2105.08911)'
BUDGETS = (3000, 10000)
DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128)
SEEDS = 20
SMOKE_BUDGETS = (800,)
SMOKE_DEPTHS = (2, 8, 32)  # at 800 parameters, ReLU at depth 32 is 4 wide and collapses
SMOKE_SEEDS = 3
D_IN, D_OUT = 2, 1

KINDS: dict[str, tuple[str, str]] = {
    "relu": ("fc", "relu"),
    "abs": ("fc", "abs"),
    "han": ("han", "abs"),
}
"""Model kind -> (family, activation)."""
KIND_LABELS = {"relu": "ReLU MLP", "abs": "abs MLP", "han": "HanNet"}
SHORT_LABELS = {"relu": "ReLU", "abs": "abs", "han": "Han"}
ALMOST_ALL = 1.0 - 1e-9
"""Tolerance for ``solve_width``: any count within the budget is accepted (largest width)."""


@dataclass(frozen=True)
class Job:
    """All seeds of one (budget, kind, depth): one model size."""

    budget: int
    kind: str
    depth: int
    width: int
    seeds: tuple[int, ...]
    device: str


def width_within(family: str, budget: int, depth: int) -> int | None:
    """The largest width whose count does not exceed the budget (None if even width 1 does)."""
    try:
        return solve_width(family, budget, depth, D_IN, D_OUT, tolerance=ALMOST_ALL, at_most=True)
    except BudgetError:
        return None


def plan(options: Options) -> list[Job]:
    budgets = options.pick(BUDGETS, SMOKE_BUDGETS)
    depths = options.pick(DEPTHS, SMOKE_DEPTHS)
    seeds = tuple(range(options.seed_count(SEEDS, SMOKE_SEEDS)))
    jobs = []
    for budget in budgets:
        for kind, (family, _) in KINDS.items():
            for depth in depths:
                width = width_within(family, budget, depth)
                if width is not None:
                    jobs.append(Job(budget, kind, depth, width, seeds, str(options.device)))
    # The deepest first, so parallel workers do not end on one long job.
    return sorted(jobs, key=lambda job: -job.depth)


def units(options: Options) -> int:
    return sum(len(job.seeds) for job in plan(options))


def measure(job: Job) -> list[dict[str, Any]]:
    """Build every seed's model, probe it on the checkerboard grid, and measure V3."""
    family, activation = KINDS[job.kind]
    device = torch.device(job.device)
    grid = load_task("checkerboard").grid
    assert grid is not None
    inputs = grid.x.to(device)
    records = []
    for seed in job.seeds:
        model = build_model(
            family, D_IN, D_OUT, job.depth, width=job.width, activation=activation, seed=seed
        ).to(device)
        results = probe_model(model, inputs, batch_size=8192, redundancy=False)
        ratios = [s.activation_ratio for s in results.sites if s.activation_ratio is not None]
        records.append(
            {
                "budget": job.budget,
                "kind": job.kind,
                "family": family,
                "activation": activation,
                "depth": job.depth,
                "width": job.width,
                "params": count_params(model),
                "seed": seed,
                "output_variability": results.output.variability if results.output else None,
                "collapsed": bool(results.network_collapsed),
                "first_collapsed_site": results.first_collapsed_site,
                "activation_ratio": float(np.mean(ratios)) if ratios else None,
                "v3": v3(model, dim=D_IN),
            }
        )
    return records


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (budget, kind, depth): size, V, V3, activation ratio, C2C rate over seeds."""
    rows = []
    for (budget, kind, depth), group in records.groupby(["budget", "kind", "depth"], sort=True):
        params = int(group["params"].iloc[0])
        collapsed = int(group["collapsed"].sum())
        v_mean, v_std = mean_std(group["output_variability"])
        v3_mean, v3_std = mean_std(group["v3"])
        rows.append(
            {
                "budget": int(budget),
                "kind": kind,
                "model": SHORT_LABELS[kind],
                "depth": int(depth),
                "width": int(group["width"].iloc[0]),
                "params": params,
                "of budget": f"{100 * params / budget:.1f}%",
                "seeds": len(group),
                "V mean": v_mean,
                "V std": v_std,
                "V3 mean": v3_mean,
                "V3 std": v3_std,
                "AR mean": mean_std(group["activation_ratio"])[0],
                "C2C": collapsed,
                "C2C rate": collapsed / len(group),
            }
        )
    order = {kind: i for i, kind in enumerate(KINDS)}
    frame = pd.DataFrame(rows)
    return frame.sort_values(
        ["budget", "kind", "depth"], key=lambda c: c.map(order) if c.name == "kind" else c
    ).reset_index(drop=True)


def printed_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The terminal's table: sizes and the figures as mean ± std over seeds."""

    def pm(means: pd.Series, spreads: pd.Series) -> list[str]:
        return [f"{m:.3g}±{s:.2g}" for m, s in zip(means, spreads, strict=True)]

    return pd.DataFrame(
        {
            "budget": summary["budget"],
            "model": summary["model"],
            "depth": summary["depth"],
            "width": summary["width"],
            "params": [
                f"{p:,} ({s})" for p, s in zip(summary["params"], summary["of budget"], strict=True)
            ],
            "output V": pm(summary["V mean"], summary["V std"]),
            "V3": pm(summary["V3 mean"], summary["V3 std"]),
            "AR": [f"{v:.3f}" for v in summary["AR mean"]],
            "C2C": [f"{c}/{n}" for c, n in zip(summary["C2C"], summary["seeds"], strict=True)],
        }
    )


def peak_shape(rows: pd.DataFrame) -> tuple[int, bool]:
    """(depth of the largest mean V3, whether V3 rises to it and falls after it).

    Rises and falls: the peak is neither the shallowest nor the deepest depth measured, and the
    deepest depth's mean V3 is below the peak's.
    """
    rows = rows.sort_values("depth")
    values = rows["V3 mean"].to_numpy(float)
    peak = int(np.nanargmax(values))
    interior = 0 < peak < len(values) - 1
    return int(rows["depth"].iloc[peak]), bool(interior and values[-1] < values[peak])


def findings(summary: pd.DataFrame) -> tuple[list[tuple[str, str, str, Any]], list[str]]:
    """The claims table rows and the sentences, decided from the summary."""
    claim_rows: list[tuple[str, str, str, Any]] = []
    sentences: list[str] = []
    deepest = int(summary["depth"].max())
    for budget, by_budget in summary.groupby("budget", sort=True):
        parts, shapes = [], []
        for kind in KINDS:
            rows = by_budget[by_budget["kind"] == kind]
            if rows.empty:
                continue
            peak, shape = peak_shape(rows)
            shapes.append((kind, shape))
            first = rows.sort_values("depth").iloc[0]
            last = rows.sort_values("depth").iloc[-1]
            parts.append(
                f"{KIND_LABELS[kind]}: peak at depth {peak} "
                f"(V3 {rows['V3 mean'].max():.3g}; depth {int(first['depth'])}: "
                f"{first['V3 mean']:.3g}, depth {int(last['depth'])}: {last['V3 mean']:.3g})"
            )
        relu_shape = dict(shapes).get("relu")
        claim_rows.append(
            (
                f"V3 rises with depth, peaks, then falls (budget {budget:,})",
                "rises, peaks, falls",
                "; ".join(parts),
                relu_shape,
            )
        )
        sentences.append(
            f"Budget {budget:,}: " + "; ".join(parts) + ". 'Holds' is judged on the ReLU MLP: "
            "the peak must be at an interior depth and the deepest depth below it."
        )
        rates = {
            kind: by_budget[by_budget["kind"] == kind].set_index("depth")["C2C rate"]
            for kind in KINDS
            if (by_budget["kind"] == kind).any()
        }
        relu = rates.get("relu")
        if relu is not None:
            c2c_sets_in = bool(relu.iloc[-1] > relu.iloc[0])
            claim_rows.append(
                (
                    f"C2C sets in with depth, ReLU (budget {budget:,})",
                    "deep narrow nets collapse",
                    ", ".join(f"depth {d}: {r:.2f}" for d, r in relu.items()),
                    c2c_sets_in,
                )
            )
        if relu is not None and "abs" in rates:
            counts = {
                kind: int(by_budget[by_budget["kind"] == kind]["C2C"].sum()) for kind in rates
            }
            seeds = int(by_budget["seeds"].iloc[0])
            models = {k: seeds * len(rates[k]) for k in rates}
            resists = counts["abs"] < counts["relu"]
            claim_rows.append(
                (
                    f"abs resists C2C better than ReLU (budget {budget:,})",
                    "fewer collapsed abs nets",
                    "collapsed at initialisation: "
                    + ", ".join(f"{KIND_LABELS[k]} {counts[k]}/{models[k]}" for k in counts)
                    + f"; at depth {deepest}: "
                    + ", ".join(
                        f"{KIND_LABELS[k]} {rates[k].get(deepest, float('nan')):.2f}" for k in rates
                    ),
                    resists,
                )
            )
            sentences.append(
                f"Budget {budget:,}: models collapsed at initialisation (output V <= 1e-3), "
                "over all depths: "
                + ", ".join(f"{KIND_LABELS[k]} {counts[k]} of {models[k]}" for k in counts)
                + "."
            )
    return claim_rows, sentences


def run(options: Options, advance: Advance) -> Outcome:
    from variability.reports.figures.reproductions import against_depth

    jobs = plan(options)
    batches = run_models(measure, jobs, options, advance, units=lambda job: len(job.seeds))
    records = [record for batch in batches for record in batch]
    frame = pd.DataFrame(records)
    summary = summarise(frame)
    claim_rows, sentences = findings(summary)
    budgets = sorted(summary["budget"].unique())
    depths = sorted(summary["depth"].unique())
    seeds = len(jobs[0].seeds) if jobs else 0
    figure = against_depth(
        frame.assign(
            c2c=frame["collapsed"].astype(float),
            budget_label=[f"budget {b:,}" for b in frame["budget"]],
        ),
        panels=[
            ("v3", "V3 at initialisation (log)", True),
            ("output_variability", "output V at initialisation (log)", True),
            ("c2c", "C2C rate (share of seeds collapsed)", False),
        ],
        hue="kind",
        labels=KIND_LABELS,
        colours={"relu": "fc", "abs": "lcw", "han": "han"},
        facet="budget_label",
    )
    deviations = [
        "Sizes: each model takes the largest width whose parameter count does not exceed the "
        "budget; deep models fall short of the budget by more than 5% (the 'of budget' column "
        "gives every model's share). The paper's exact widths are not restated in our sources.",
        "V3 is our exact form (docs/figures.md): the mean absolute third forward difference of "
        "the standardised output on the 81 x 81 grid over [-1, 1]^2, not the paper's "
        "derivative-based estimate; it follows the same idea (third-order variation of the output "
        "over the input domain).",
        "Initialisation: the toolkit's (Kaiming-normal weights with gain sqrt(2) for ReLU and 1 "
        "for abs, zero biases; Han: orthogonal Linear layers, random unit u, b uniform in "
        "+-1/sqrt(w)); the paper's initialisation details are not restated in our sources.",
        "The HanNet rows are ours (the Han paper's architecture at the same budgets), beside the "
        "paper's ReLU and absolute-value MLPs.",
    ]
    return Outcome(
        name=NAME,
        title="variability against depth at a fixed parameter count",
        paper=PAPER,
        claims=claims_frame(claim_rows),
        table=printed_table(summary),
        table_caption=(
            f"At initialisation, over {seeds} seeds per row (mean ± std): output V and V3 on the "
            "checkerboard grid, mean activation ratio (AR) of the hidden sites, and collapsed "
            "seeds (C2C: output V <= 1e-3)."
        ),
        findings=sentences,
        settings={
            "budgets": budgets,
            "depths": depths,
            "models": [KIND_LABELS[k] for k in KINDS],
            "seeds per model": seeds,
            "probe set": "checkerboard grid, 81 x 81 points over [-1, 1]^2",
            "V3": "81 x 81 grid over [-1, 1]^2",
            "C2C": "output V <= 1e-3",
            "sizes": "largest width within the budget",
            "device": str(options.device),
        },
        deviations=deviations,
        records=records,
        figures=[
            (
                figure,
                "variability_depth",
                "V3, output V and the C2C rate against depth at initialisation (line: mean over "
                "seeds; band: 25th to 75th percentile; log axes draw values below 1e-4 at 1e-4; "
                "C2C: share of seeds collapsed, where the abs MLP and HanNet lines lie on top of "
                "each other at 0).",
            )
        ],
        tables=[(summary.drop(columns=["kind"]), "Every figure per row, unrounded.")],
        glossary=("Variability (V)", "V3", "Collapse to constants (C2C)", "Activation ratio (AR)"),
        smoke=options.smoke,
    )


REPRODUCTION = Reproduction(
    name=NAME,
    title="Variability against depth at a fixed parameter count",
    paper=PAPER,
    units=units,
    run=run,
)
