"""Deep sigmoid networks with and without linearly constrained weights (Kutsuna, arXiv 2403.13833).

Claims: in a sigmoid MLP the incoming activations share a non-zero mean, so each unit's
pre-activation is shifted (activation shift); LCW (weight rows that sum to zero) removes the
shift, and with it very deep (up to 100-layer) sigmoid MLPs train where plain ones do not.

We train plain and LCW sigmoid MLPs of equal width at depths 10, 20, 50 and 100 on scikit-learn
digits with the toolkit's trainer (a Monitor records every site's figures and gradient RMS into
each run's metrics.jsonl), and read: the test accuracy of the checkpoint chosen on validation
after a fixed number of steps; per layer, the activation shift and the gradient RMS at
initialisation and at the end of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from variability.arch import build_model, count_params
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
from variability.probes import probe_model
from variability.runs import TrainConfig, read_metrics, train
from variability.runs.trainer import probe_set
from variability.tasks import load_task

NAME = "lcw-sigmoid"
PAPER = (
    'Kutsuna, "Linearly Constrained Weights: Reducing Activation Shift for Faster Training of '
    'Neural Networks" (ECML PKDD 2019; arXiv 2403.13833)'
)
FAMILIES = {"fc": "plain sigmoid", "lcw": "LCW sigmoid"}
TRAINS = 0.2
"""Chance on digits is 0.1; 'trains' below means a test accuracy at least twice chance."""
GRADIENT_FLOOR = 1e-30
LCW_MARGIN = 0.2
"""The deepest LCW net must beat the plain one by this much accuracy for the claim to hold."""


@dataclass(frozen=True)
class Settings:
    depths: tuple[int, ...]
    width: int
    steps: int
    lr: float
    optimizer: str
    batch_size: int
    every: int
    seeds: int


@dataclass(frozen=True)
class Job:
    family: str
    depth: int
    seed: int
    settings: Settings
    run_dir: str
    device: str


def settings_for(options: Options) -> Settings:
    return Settings(
        depths=options.pick((10, 20, 50, 100), (3, 6)),
        width=options.pick(64, 8),
        steps=options.pick(1000, 20),
        lr=0.01,
        optimizer="sgd",
        batch_size=128,
        every=options.pick(100, 10),
        seeds=options.seed_count(3, 1),
    )


def plan(options: Options) -> list[Job]:
    settings = settings_for(options)
    jobs = [
        Job(
            family,
            depth,
            seed,
            settings,
            str(options.runs / NAME / f"{family}-d{depth}-s{seed}"),
            str(options.device),
        )
        for depth in settings.depths
        for family in FAMILIES
        for seed in range(settings.seeds)
    ]
    return sorted(jobs, key=lambda job: -job.depth)


def units(options: Options) -> int:
    return len(plan(options))


def train_one(job: Job) -> dict[str, Any]:
    """Probe at initialisation, train with the toolkit's trainer, read the run's records."""
    settings = job.settings
    device = torch.device(job.device)
    task = load_task("digits")
    model = build_model(
        job.family, task.d_in, task.d_out, job.depth, width=settings.width,
        activation="sigmoid", seed=job.seed,
    ).to(device)  # fmt: skip
    initial = probe_model(
        model, probe_set(task, 8192).to(device), batch_size=4096, redundancy=False
    )
    config = TrainConfig(
        steps=settings.steps,
        lr=settings.lr,
        optimizer=settings.optimizer,
        batch_size=settings.batch_size,
        seed=job.seed,
        every=settings.every,
    )
    run_dir = job_dir(job.run_dir)  # where this worker writes it (in_job)
    result = train(model, task, config, run_dir, resume=True, device=device)
    probes = read_metrics(run_dir, "probe")
    layers = []
    first, last = int(probes["step"].min()), int(probes["step"].max())
    for site in initial.sites:
        layer = hidden_layer(site.name)
        if layer is None:
            continue

        def figure(step: int, inputs: str, column: str, name: str = site.name) -> float | None:
            rows = probes[
                (probes["step"] == step) & (probes["inputs"] == inputs) & (probes["site"] == name)
            ]
            if rows.empty or column not in rows or pd.isna(rows[column].iloc[0]):
                return None
            return float(rows[column].iloc[0])

        layers.append(
            {
                "layer": layer,
                "shift_init": site.activation_shift,
                "shift_trained": figure(last, "probe_set", "activation_shift"),
                "variability_init": site.variability,
                "variability_trained": figure(last, "probe_set", "variability"),
                # Step 1's batch: the gradient at the initial weights (before the first update).
                "gradient_init": figure(first, "batch", "gradient_rms"),
                "gradient_trained": figure(last, "batch", "gradient_rms"),
            }
        )
    return {
        "family": job.family,
        "depth": job.depth,
        "width": settings.width,
        "params": count_params(model),
        "seed": job.seed,
        "test": result.test,
        "val": result.val,
        "train": result.train,
        "best_step": result.best_step,
        "seconds": result.seconds,
        "run_dir": job.run_dir,
        "layers": layers,
    }


def layer_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Long form: one row per (run, layer, stage) with the shift and gradient RMS."""
    rows = []
    for record in records:
        for layer in record["layers"]:
            for stage, suffix in (("initialisation", "init"), ("trained", "trained")):
                rows.append(
                    {
                        "family": record["family"],
                        "depth": record["depth"],
                        "seed": record["seed"],
                        "layer": layer["layer"],
                        "stage": stage,
                        "activation shift": layer[f"shift_{suffix}"],
                        "gradient RMS": layer[f"gradient_{suffix}"],
                        "V": layer[f"variability_{suffix}"],
                    }
                )
    frame = pd.DataFrame(rows).sort_values(["depth", "family", "seed", "layer"], kind="stable")
    frame["depth label"] = [f"depth {d}" for d in frame["depth"]]
    return frame.reset_index(drop=True)


def _gradient_ratio(layers: list[dict[str, Any]], stage: str) -> float | None:
    """Gradient RMS at the first hidden layer over that at the last: below 1, it vanishes
    towards the input."""
    ordered = sorted(layers, key=lambda row: row["layer"])
    first, last = ordered[0][f"gradient_{stage}"], ordered[-1][f"gradient_{stage}"]
    if first is None or last is None or last == 0:
        return None
    return first / last


def summary(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    frame = pd.DataFrame(records)
    for (depth, family), group in frame.groupby(["depth", "family"], sort=True):
        runs = group.to_dict(orient="records")
        shift = {
            stage: mean_std(
                [
                    mean_std([layer[f"shift_{stage}"] for layer in run["layers"][1:]])[0]
                    for run in runs
                ]
            )[0]
            for stage in ("init", "trained")
        }
        ratio = {
            stage: mean_std([_gradient_ratio(run["layers"], stage) for run in runs])[0]
            for stage in ("init", "trained")
        }
        test_mean, test_std = mean_std(group["test"])
        rows.append(
            {
                "depth": int(depth),
                "model": FAMILIES[family],
                "family": family,
                "params": int(group["params"].iloc[0]),
                "test acc": f"{100 * test_mean:.1f} ± {100 * test_std:.1f}%",
                "test mean": test_mean,
                "shift init": shift["init"],
                "shift trained": shift["trained"],
                "grad first/last init": ratio["init"],
                "grad first/last trained": ratio["trained"],
                "seeds": len(group),
            }
        )
    return pd.DataFrame(rows)


def printed(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "depth": table["depth"],
            "model": table["model"],
            "params": table["params"],
            "test acc": table["test acc"],
            "shift (init → trained)": [
                f"{a:.3f} → {b:.3f}"
                for a, b in zip(table["shift init"], table["shift trained"], strict=True)
            ],
            "grad first/last (init → trained)": [
                f"{a:.3g} → {b:.3g}"
                for a, b in zip(
                    table["grad first/last init"], table["grad first/last trained"], strict=True
                )
            ],
        }
    )


def claims(table: pd.DataFrame) -> tuple[list[tuple[str, str, str, Any]], list[str]]:
    rows: list[tuple[str, str, str, Any]] = []
    sentences: list[str] = []
    by = {(r["family"], r["depth"]): r for r in table.to_dict(orient="records")}
    depths = sorted(table["depth"].unique())
    plain_shift = [by[("fc", d)]["shift init"] for d in depths if ("fc", d) in by]
    lcw_shift = [by[("lcw", d)]["shift init"] for d in depths if ("lcw", d) in by]
    if plain_shift and lcw_shift:
        rows.append(
            (
                "Plain sigmoid layers have an activation shift; LCW removes it (at init)",
                "shift present / removed",
                f"mean shift of layers 2..L: plain {min(plain_shift):.3f} to "
                f"{max(plain_shift):.3f}; LCW {min(lcw_shift):.3g} to {max(lcw_shift):.3g}",
                max(lcw_shift) < min(plain_shift),
            )
        )
    plain_ratio = {d: by[("fc", d)]["grad first/last init"] for d in depths if ("fc", d) in by}
    lcw_ratio = {d: by[("lcw", d)]["grad first/last init"] for d in depths if ("lcw", d) in by}
    if plain_ratio and lcw_ratio:
        deepest = max(plain_ratio)
        rows.append(
            (
                f"Gradients vanish towards the input in plain nets, not with LCW (init, "
                f"depth {deepest})",
                "vanishing gradient resolved by LCW",
                f"gradient RMS layer 1 / layer {deepest}: plain {plain_ratio[deepest]:.3g}, "
                f"LCW {lcw_ratio[deepest]:.3g}",
                lcw_ratio[deepest] > plain_ratio[deepest],
            )
        )
    accuracy = {key: row["test mean"] for key, row in by.items()}
    text = "; ".join(
        f"depth {d}: plain {100 * accuracy[('fc', d)]:.1f}%, LCW {100 * accuracy[('lcw', d)]:.1f}%"
        for d in depths
        if ("fc", d) in accuracy and ("lcw", d) in accuracy
    )
    if text:
        deepest = max(depths)
        gain = accuracy[("lcw", deepest)] - accuracy[("fc", deepest)]
        rows.append(
            (
                f"Very deep sigmoid MLPs train with LCW, not without (depth {deepest})",
                "LCW trains at 100 layers, plain does not",
                text,
                gain >= LCW_MARGIN
                and accuracy[("lcw", deepest)] >= TRAINS
                and accuracy[("fc", deepest)] < TRAINS,
            )
        )
        sentences.append(f"Test accuracy (checkpoint chosen on validation): {text}.")
        sentences.append(
            f"'Holds' for the last claim needs, at depth {deepest}, the LCW net to reach at "
            f"least {100 * TRAINS:.0f}% (twice chance), the plain one to stay below it, and LCW "
            f"to lead by at least {100 * LCW_MARGIN:.0f} points."
        )
    return rows, sentences


def run(options: Options, advance: Advance) -> Outcome:
    from variability.reports.figures.reproductions import against_depth, layer_profiles

    settings = settings_for(options)
    jobs = plan(options)
    records = run_models(train_one, jobs, options, advance)
    table = summary(records)
    claim_rows, sentences = claims(table)
    rows = load_task("digits").sizes()["train"]
    layers = layer_frame(records)
    colours = {"fc": "fc", "lcw": "lcw"}
    baseline = load_task("digits").baseline("test")
    accuracy_figure = against_depth(
        pd.DataFrame(records),
        panels=[("test", "test accuracy (chosen on validation)", False)],
        hue="family",
        labels=FAMILIES,
        colours=colours,
        baseline=(baseline, "majority class"),
    )
    shift_figure = layer_profiles(
        layers, "activation shift", "activation shift", "family", "stage", "depth label",
        labels=FAMILIES, colours=colours,
    )  # fmt: skip
    gradient_figure = layer_profiles(
        layers, "gradient RMS", "gradient RMS (log)", "family", "stage", "depth label",
        labels=FAMILIES, colours=colours, log=True, floor=GRADIENT_FLOOR,
    )  # fmt: skip
    return Outcome(
        name=NAME,
        title="deep sigmoid MLPs with and without LCW",
        paper=PAPER,
        claims=claims_frame(claim_rows),
        table=printed(table),
        table_caption=(
            f"The baseline, the majority class, scores {100 * baseline:.1f}% on the test split "
            f"(a model collapsed to a constant). Over {settings.seeds} seed(s): test accuracy "
            "(mean ± std) of the checkpoint chosen on validation after "
            f"{settings.steps:,} steps; mean activation shift of hidden layers 2..L; gradient "
            "RMS at the first hidden layer over that at the last (below 1: vanishing towards "
            "the input)."
        ),
        findings=sentences,
        settings={
            "task": "digits (scikit-learn), split seed 0, inputs standardised",
            "models": f"sigmoid MLPs, width {settings.width}, plain (Kaiming-normal rows, gain 4) "
            "and LCW (zero-sum rows, same scale)",
            "depths": list(settings.depths),
            "optimiser": f"{settings.optimizer.upper()}, momentum 0.9, learning rate "
            f"{settings.lr:g}, batch {settings.batch_size}",
            "steps": settings.steps,
            "recorded every": f"{settings.every} steps (probe set: the training rows)",
            "seeds": settings.seeds,
            "device": str(options.device),
        },
        deviations=[
            f"Data: scikit-learn digits (8 x 8 images, {rows:,} training rows) instead of the "
            "paper's image data sets; widths and step budget sized for a CPU.",
            f"Width {settings.width} for every hidden layer; the paper's widths and training "
            "lengths are not restated in our sources.",
            "Initialisation: the toolkit's. Plain rows are Kaiming-normal with gain 4 "
            "(1/sigmoid'(0)); LCW rows have the same scale with their mean removed. The first "
            "layer of both is an ordinary Linear layer (its inputs are standardised, so they "
            "have no shared mean to cancel).",
            "Test accuracy is that of the checkpoint chosen on the validation split (the "
            "trainer's rule), evaluated every "
            f"{settings.every} steps.",
        ],
        records=records,
        figures=[
            (
                accuracy_figure,
                "accuracy",
                "Test accuracy against depth (line: mean over seeds; band: 25th to 75th "
                "percentile).",
            ),
            (
                shift_figure,
                "activation_shift",
                "Activation shift per hidden layer at initialisation and after training.",
            ),
            (
                gradient_figure,
                "gradient_rms",
                "Gradient RMS of the loss at each hidden layer's output at initialisation (step "
                "1's batch) and at the last step (mean over seeds; values below "
                f"{GRADIENT_FLOOR:g} drawn at it).",
            ),
        ],
        tables=[(table.drop(columns=["family", "test mean"]), "Every figure, unrounded.")],
        glossary=("Activation shift", "Gradient RMS", "Variability (V)"),
        smoke=options.smoke,
    )


REPRODUCTION = Reproduction(
    name=NAME,
    title="Deep sigmoid MLPs with and without LCW",
    paper=PAPER,
    units=units,
    run=run,
)

__all__ = ["NAME", "REPRODUCTION"]
