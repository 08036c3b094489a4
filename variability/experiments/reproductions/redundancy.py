"""Neuron redundancy in small networks over training (Kovalenko, Kordik & Friedjungova, "Dynamic
Neural Diversification", arXiv 2109.09612).

Claim: in small networks, redundant (correlated) hidden neurons waste parameters, and
decorrelating them helps early training. We do not decorrelate anything; we measure what the
claim rests on: the redundancy (mean absolute correlation between pairs of non-constant units)
of every hidden layer over training, for small FC (ReLU) and Han networks of equal parameter
count on digits, from the Monitor's records (``TrainConfig(redundancy=True)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from variability.arch import build_model, count_params, solve_width
from variability.experiments.in_job import job_dir
from variability.experiments.reproductions.base import (
    Advance,
    Options,
    Outcome,
    Reproduction,
    claims_frame,
    hidden_layer,
    mean_std,
    run_models,
)
from variability.runs import TrainConfig, read_metrics, train
from variability.tasks import load_task

NAME = "redundancy"
PAPER = (
    'Kovalenko, Kordik & Friedjungova, "Dynamic Neural Diversification: Path to '
    'Computationally Sustainable Neural Networks" (arXiv 2109.09612)'
)
FAMILIES = {"fc": "FC (ReLU)", "han": "Han"}
SIGNIFICANT = 5.0
"""Redundancy counts as real correlation when it is this many times that of independent units."""


@dataclass(frozen=True)
class Settings:
    depth: int
    budget: int
    steps: int
    lr: float
    batch_size: int
    every: int
    seeds: int
    early: int


@dataclass(frozen=True)
class Job:
    family: str
    width: int
    seed: int
    settings: Settings
    run_dir: str
    device: str


def settings_for(options: Options) -> Settings:
    return Settings(
        depth=options.pick(3, 2),
        budget=options.pick(2850, 1200),
        steps=options.pick(600, 20),
        lr=3e-3,
        batch_size=128,
        every=options.pick(20, 5),
        seeds=options.seed_count(3, 1),
        early=options.pick(100, 10),
    )


def plan(options: Options) -> list[Job]:
    """Every run; the widths are solved here, so a budget that does not fit is refused before
    anything trains."""
    settings = settings_for(options)
    task = load_task("digits")
    widths = {
        family: solve_width(
            family, settings.budget, settings.depth, task.d_in, task.d_out, at_most=True
        )
        for family in FAMILIES
    }
    return [
        Job(
            family,
            widths[family],
            seed,
            settings,
            str(options.runs / NAME / f"{family}-s{seed}"),
            str(options.device),
        )
        for family in FAMILIES
        for seed in range(settings.seeds)
    ]


def units(options: Options) -> int:
    return len(plan(options))


def train_one(job: Job) -> dict[str, Any]:
    settings = job.settings
    device = torch.device(job.device)
    task = load_task("digits")
    model = build_model(
        job.family, task.d_in, task.d_out, settings.depth, width=job.width, seed=job.seed
    ).to(device)
    config = TrainConfig(
        steps=settings.steps,
        lr=settings.lr,
        batch_size=settings.batch_size,
        seed=job.seed,
        every=settings.every,
        redundancy=True,
    )
    run_dir = job_dir(job.run_dir)  # where this worker writes it (in_job)
    result = train(model, task, config, run_dir, resume=True, device=device)
    probes = read_metrics(run_dir, "probe")
    probes = probes[probes["inputs"] == "probe_set"]
    steps = read_metrics(run_dir, "step")
    curve = []
    for row in probes.itertuples(index=False):
        layer = hidden_layer(str(row.site))
        value = getattr(row, "redundancy", None)
        if layer is None or value is None or pd.isna(value):
            continue
        curve.append({"step": int(row.step), "layer": layer, "redundancy": float(value)})
    losses = [
        {"step": int(row.step), "loss": float(row.loss)}
        for row in steps.itertuples(index=False)
        if not pd.isna(row.loss)
    ]
    return {
        "family": job.family,
        "seed": job.seed,
        "depth": settings.depth,
        "width": int(model.spec["width"]),
        "params": count_params(model),
        "probe_rows": int(probes["samples"].max()) if not probes.empty else 0,
        "test": result.test,
        "seconds": result.seconds,
        "run_dir": job.run_dir,
        "redundancy": curve,
        "loss": losses,
    }


def independent_level(samples: int) -> float:
    """Expected |Pearson r| of two independent units over ``samples`` inputs: sqrt(2 / (pi n))."""
    return math.sqrt(2.0 / (math.pi * max(samples, 1)))


def curve_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {"family": r["family"], "seed": r["seed"], **point, "layer": f"layer {point['layer']}"}
        for r in records
        for point in r["redundancy"]
    ]
    return pd.DataFrame(rows)


def summary(records: list[dict[str, Any]], early: int) -> pd.DataFrame:
    """Per (family, layer): redundancy at the first record, at ``early`` and at the end."""
    rows = []
    for family in FAMILIES:
        runs = [r for r in records if r["family"] == family]
        if not runs:
            continue
        layers = sorted({p["layer"] for r in runs for p in r["redundancy"]})
        for layer in layers:

            def at(position: str, layer: int = layer, runs: list = runs) -> list[float]:
                values = []
                for run in runs:
                    points = sorted(
                        (p for p in run["redundancy"] if p["layer"] == layer),
                        key=lambda p: p["step"],
                    )
                    if not points:
                        continue
                    if position == "first":
                        values.append(points[0]["redundancy"])
                    elif position == "last":
                        values.append(points[-1]["redundancy"])
                    else:
                        near = min(points, key=lambda p: abs(p["step"] - early))
                        values.append(near["redundancy"])
                return values

            first, middle, last = at("first"), at("early"), at("last")
            rows.append(
                {
                    "model": FAMILIES[family],
                    "family": family,
                    "width": runs[0]["width"],
                    "params": runs[0]["params"],
                    "layer": layer,
                    "step 1": mean_std(first)[0],
                    f"step {early}": mean_std(middle)[0],
                    "end": mean_std(last)[0],
                    "end std": mean_std(last)[1],
                    "test acc": mean_std([r["test"] for r in runs])[0],
                }
            )
    return pd.DataFrame(rows)


def early_loss(records: list[dict[str, Any]], family: str, early: int) -> float:
    """Mean training loss over the records up to step ``early``, over seeds."""
    values = [
        point["loss"]
        for record in records
        if record["family"] == family
        for point in record["loss"]
        if point["step"] <= early
    ]
    return mean_std(values)[0]


def claims(
    table: pd.DataFrame, records: list[dict[str, Any]], early: int
) -> tuple[list[tuple[str, str, str, Any]], list[str]]:
    rows: list[tuple[str, str, str, Any]] = []
    sentences: list[str] = []
    samples = min((r["probe_rows"] for r in records), default=0)
    level = independent_level(samples)
    means = {
        family: (group["step 1"].mean(), group["end"].mean())
        for family, group in table.groupby("family", sort=False)
    }
    if means:
        text = "; ".join(
            f"{FAMILIES[f]}: {start:.3f} at step 1, {end:.3f} at the end"
            for f, (start, end) in means.items()
        )
        rows.append(
            (
                "Hidden units of small networks are redundant (correlated)",
                "redundant neurons waste parameters",
                f"mean redundancy over layers: {text} (independent units: {level:.3f})",
                all(min(v) > SIGNIFICANT * level for v in means.values()),
            )
        )
        sentences.append(
            f"Redundancy is the mean |correlation| between pairs of non-constant units on the "
            f"{samples:,} probe rows; independent units would give about {level:.3f} "
            f"(sqrt(2 / (pi n))). 'Holds' needs every family's mean above {SIGNIFICANT:g} times "
            "that."
        )
    if len(means) == 2:
        fc, han = means["fc"][1], means["han"][1]
        loss = {f: early_loss(records, f, early) for f in means}
        rows.append(
            (
                "Less redundancy goes with faster early training",
                "decorrelating helps early training",
                f"end redundancy FC {fc:.3f}, Han {han:.3f}; mean training loss up to step "
                f"{early}: FC {loss['fc']:.3f}, Han {loss['han']:.3f}",
                "not tested (we measure, we do not decorrelate)",
            )
        )
        sentences.append(
            f"At the end of training the Han layers' units are "
            f"{'less' if han < fc else 'more'} correlated than the FC layers' ({han:.3f} "
            f"against {fc:.3f}, mean over layers and seeds)."
        )
    for family, group in table.groupby("family", sort=False):
        change = group["end"] - group["step 1"]
        direction = "rises" if change.mean() > 0 else "falls"
        sentences.append(
            f"{FAMILIES[family]}: redundancy {direction} over training in "
            f"{int((change > 0).sum() if direction == 'rises' else (change < 0).sum())} of "
            f"{len(group)} layers ("
            + ", ".join(
                f"layer {int(r['layer'])}: {r['step 1']:.3f} → {r['end']:.3f}"
                for r in group.to_dict(orient="records")
            )
            + ")."
        )
    return rows, sentences


def run(options: Options, advance: Advance) -> Outcome:
    from variability.reports.figures.reproductions import curves

    settings = settings_for(options)
    records = run_models(train_one, plan(options), options, advance)
    table = summary(records, settings.early)
    baseline = load_task("digits").baseline("test")
    claim_rows, sentences = claims(table, records, settings.early)
    colours = {"fc": "fc", "han": "han"}
    redundancy_figure = curves(
        curve_frame(records), "step", "redundancy", "redundancy (mean |corr|)", "family",
        "layer", labels=FAMILIES, colours=colours,
    )  # fmt: skip
    loss_rows = [
        {"family": r["family"], "seed": r["seed"], "panel": "training loss", **point}
        for r in records
        for point in r["loss"]
    ]
    loss_figure = curves(
        pd.DataFrame(loss_rows), "step", "loss", "training loss (cross-entropy)", "family",
        "panel", labels=FAMILIES, colours=colours,
    )  # fmt: skip
    printed = pd.DataFrame(
        {
            "model": table["model"],
            "width": table["width"],
            "params": table["params"],
            "layer": table["layer"],
            "redundancy step 1": table["step 1"].map("{:.3f}".format),
            f"step {settings.early}": table[f"step {settings.early}"].map("{:.3f}".format),
            "end": [
                f"{m:.3f} ± {s:.3f}" for m, s in zip(table["end"], table["end std"], strict=True)
            ],
            "test acc": table["test acc"].map("{:.1%}".format),
        }
    )
    return Outcome(
        name=NAME,
        title="neuron redundancy over training, FC against Han",
        paper=PAPER,
        claims=claims_frame(claim_rows),
        table=printed,
        table_caption=(
            f"Redundancy per hidden layer on the probe set (mean over {settings.seeds} seed(s); "
            "end: mean ± std), and the test accuracy of the checkpoint chosen on validation "
            f"(the baseline, the majority class, scores {100 * baseline:.1f}%)."
        ),
        findings=sentences,
        settings={
            "task": "digits (scikit-learn), split seed 0",
            "models": f"FC (ReLU) and Han, {settings.depth} hidden layers, the largest width "
            f"within {settings.budget:,} parameters (within 5% of it)",
            "optimiser": f"Adam, learning rate {settings.lr:g}, batch {settings.batch_size}",
            "steps": settings.steps,
            "recorded every": f"{settings.every} steps, on the probe set (the training rows)",
            "seeds": settings.seeds,
            "device": str(options.device),
        },
        deviations=[
            "The paper decorrelates neurons during training (its method); we only measure "
            "redundancy, so its claim that decorrelating helps is not tested here.",
            "Data and models are ours: scikit-learn digits, FC (ReLU) against Han at equal "
            "parameter counts; the paper's data sets and network sizes are not restated in our "
            "sources.",
            "Redundancy is the toolkit's figure (docs/figures.md): mean absolute Pearson "
            "correlation over pairs of non-constant units, on the fixed probe set.",
        ],
        records=records,
        figures=[
            (
                redundancy_figure,
                "redundancy",
                "Redundancy of each hidden layer against training step (mean over seeds, band "
                "± std).",
            ),
            (loss_figure, "training_loss", "Training loss against step (mean over seeds)."),
        ],
        tables=[(table.drop(columns=["family"]), "Every figure, unrounded.")],
        glossary=("Redundancy",),
        smoke=options.smoke,
    )


REPRODUCTION = Reproduction(
    name=NAME,
    title="Neuron redundancy over training, FC against Han",
    paper=PAPER,
    units=units,
    run=run,
)

__all__ = ["NAME", "REPRODUCTION", "independent_level"]
