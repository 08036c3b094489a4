"""The report of one training run (``variability report RUN_DIR``).

It takes what a run directory holds, already read: ``run.json`` as a dict, the records of
``metrics.jsonl`` as a DataFrame, ``result.json`` (None while the run has not finished). Reading
the directory is the command line's job, so the same page can be built from any source.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from variability.probes import Thresholds
from variability.reports.figures.training import (
    activation_heatmap,
    gradient_rms,
    of_type,
    output_variability,
    site_kinds,
    training_curves,
    variability_heatmap,
    watched_inputs,
)
from variability.reports.glossary import glossary_for
from variability.reports.page import Page
from variability.reports.text import baseline_name
from variability.reports.uniform import (
    activation_sentence,
    coinciding_gradients,
    gradient_sentence,
    uniform_value,
)

INPUTS_WORDS = {
    "probe_set": "the fixed probe set (the same inputs at every recorded step)",
    "batch": "the training batch of each recorded step",
}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as ``a.b.c: value`` lines, for the configuration table."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and len(value) > 12:
            out[name] = ", ".join(map(str, value[:12])) + f", ... ({len(value)} in all)"
        else:
            out[name] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


def made_with(run: Mapping[str, Any], report: Mapping[str, str]) -> dict[str, str]:
    """The run's environment and the report's provenance in one list, each version once: a
    package at the same version for both is one row, at two versions one row naming both."""
    rows = {k: str(v) for k, v in report.items()}
    for key, value in run.items():
        text = str(value)
        if key not in rows:
            rows[key] = text
        elif rows[key] != text:
            rows[key] = f"{text} (the run), {rows[key]} (this report)"
    return rows


def describe_run(info: Mapping[str, Any]) -> str:
    """One line: the model, the task and the training settings."""
    model = info.get("model", {})
    spec = model.get("spec") or {}
    parameters = model.get("parameters")
    size = f" ({parameters:,} parameters)" if isinstance(parameters, int) else ""
    if spec:
        what = f"{spec.get('family')} depth {spec.get('depth')} width {spec.get('width')}{size}"
    else:
        what = f"{model.get('class', 'a model')}{size}"
    task = info.get("task", {}).get("name")
    config = info.get("config", {})
    parts = [what + (f" on {task}" if task else "")]
    if "steps" in config:
        parts.append(
            f"{config['steps']:,} steps of {config.get('optimizer')} (lr {config.get('lr')}, "
            f"batch {config.get('batch_size')})"
        )
    return "; ".join(parts)


def _results_table(result: Mapping[str, Any], baseline: Mapping[str, float]) -> pd.DataFrame:
    """The chosen checkpoint's metric and loss on every split, beside the baseline's metric."""
    metric = result.get("metric", "metric")
    splits = ("train", "val", "test")
    table = pd.DataFrame(
        {
            "split": list(splits),
            metric: [result.get(s) for s in splits],
            "loss": [result.get(f"{s}_loss") for s in splits],
        }
    )
    if baseline:
        table[f"{metric} of the {baseline_name(metric)}"] = [baseline.get(s) for s in splits]
    return table


def _event_list(events: pd.DataFrame) -> str:
    ordered = events.sort_values("step", kind="stable") if "step" in events else events
    items = "".join(f"<li>{html.escape(str(m))}</li>" for m in ordered.get("message", []))
    return f"<ul>{items}</ul>"


def build_run_page(
    info: Mapping[str, Any],
    records: pd.DataFrame,
    result: Mapping[str, Any] | None = None,
    *,
    title: str = "Training run",
    provenance: Mapping[str, str] | None = None,
) -> Page:
    """The page of one run: summary, events, curves, heatmaps, gradients, configuration."""
    page = Page(title, describe_run(info))
    # the levels the Monitor used, as run.json echoes them (defaults for a run that lacks them)
    thresholds = Thresholds.from_dict(info.get("monitor", info.get("config", {})).get("thresholds"))
    collapsed, collapsing = thresholds.collapsed, thresholds.collapsing
    probes = of_type(records, "probe")
    inputs = watched_inputs(probes)
    watched = probes[probes["inputs"] == inputs] if inputs else pd.DataFrame()

    summary = page.section("Summary")
    if result is not None:
        summary.paragraph(
            f"Finished after {result.get('steps')} steps. The checkpoint of step "
            f"{result.get('best_step')} had the best validation {result.get('metric')} and is "
            "model.pt; the table scores it on every split (the test split played no part in "
            "choosing it)."
        )
        baselines = info.get("task", {}).get("baseline") or {}
        summary.table(
            _results_table(result, baselines),
            caption="The chosen checkpoint on every split"
            + (
                f", beside the {baseline_name(str(result.get('metric')))}: what a model "
                "collapsed to a constant scores"
                if baselines
                else ""
            ),
        )
        variability = result.get("output_variability")
        if variability is not None:
            verdict = "collapsed to a constant" if result.get("network_collapsed") else "healthy"
            summary.paragraph(
                f"Its output variability on the probe set is {variability:.3g}: {verdict} "
                f"(collapsed at V <= {collapsed:g})."
            )
    else:
        steps = records["step"].dropna() if "step" in records else pd.Series(dtype=float)
        last = int(steps.max()) if not steps.empty else 0
        if info.get("kind") == "train":
            summary.note(
                f"This run has not finished (records up to step {last}); the figures show what "
                "was recorded so far."
            )
        else:
            recorded = probes["step"].nunique() if "step" in probes else 0
            summary.paragraph(
                f"Recorded by a Monitor in a training loop: {recorded} recorded steps, records "
                f"up to step {last}."
            )
    if inputs:
        summary.paragraph(f"Site figures below are measured on {INPUTS_WORDS[inputs]}.")

    events = of_type(records, "event")
    section = page.section("Warnings during training")
    if events.empty:
        section.paragraph(
            "None: no site became collapsing or collapsed, no site had too many dead units, "
            "and no NaN or Inf was seen."
        )
    else:
        section.paragraph("Each warning once, at the first recorded step that showed it:")
        section.html(_event_list(events))

    curves = page.section("Training curves")
    chosen = None if result is None else result.get("best_step")
    metric = (result or {}).get("metric") or info.get("task", {}).get("metric", "metric")
    evals = of_type(records, "eval")
    if not evals.empty and "split" in evals:
        evals = evals[evals["split"] == "val"]
    baseline = (info.get("task", {}).get("baseline") or {}).get("val")
    constant = baseline_name(metric)
    caption = "Loss of the training batches (mean over the steps between records)"
    if not evals.empty:
        caption += (
            f" and on the validation split; right: the validation {metric}, with the chosen "
            "checkpoint" + (f" and, dashed, the {constant}'s score" if baseline is not None else "")
        )
    curves.figure(
        training_curves(of_type(records, "step"), evals, metric, chosen, baseline, constant),
        "curves",
        caption + ".",
    )
    curves.figure(
        output_variability(watched, collapsed, collapsing),
        "output_variability",
        "Variability of the network's output at each recorded step.",
    )

    maps = page.section("Where signal dies, step by step")
    maps.figure(
        variability_heatmap(watched, collapsed),
        "variability_heatmap",
        "Variability V of every site (rows, in depth order; the output last) at every recorded "
        f"step (columns). Dark: V near {collapsed / 10:g} or below, collapsed.",
    )
    ratio = uniform_value(watched, "activation_ratio")
    if ratio is None:
        maps.figure(
            activation_heatmap(watched),
            "activation_heatmap",
            "Activation ratio of every site at every recorded step: the share of (unit, input) "
            "pairs where the unit is active.",
        )
    else:
        maps.paragraph(activation_sentence(ratio, site_kinds(watched)))
    gradients = page.section("Gradients")
    batch = probes[probes["inputs"] == "batch"] if "inputs" in probes else pd.DataFrame()
    gradients.figure(
        gradient_rms(batch),
        "gradient_rms",
        "RMS of the gradient of the loss with respect to each site's output, on the training "
        "batch of each recorded step. Small values mean vanishing gradients, which is not the "
        "same as collapse.",
    )
    if coinciding_gradients(batch):
        gradients.paragraph(gradient_sentence(info.get("model", {}).get("family")))

    page.section("What the figures mean").definitions(
        glossary_for(
            "Probe site",
            "Variability (V)",
            "Collapsed / collapsing",
            "Collapse to constants (C2C)",
            "Activation ratio (AR)",
            "Dead units",
            "Gradient RMS",
        )
    )
    settings = flatten({k: v for k, v in info.items() if k not in ("format", "environment")})
    page.section("Configuration").table(
        pd.DataFrame({"setting": list(settings), "value": list(settings.values())})
    )
    made = made_with(info.get("environment", {}), provenance or {})
    page.section("How this report was made").table(
        pd.DataFrame({"item": list(made), "value": list(made.values())})
    )
    return page


def write_run_report(
    info: Mapping[str, Any],
    records: pd.DataFrame,
    result: Mapping[str, Any] | None,
    folder: str | os.PathLike[str],
    *,
    self_contained: bool = False,
    **page_options: Any,
) -> Path:
    """Write the report folder atomically; returns the path of its ``index.html``."""
    page = build_run_page(info, records, result, **page_options)
    return page.write(Path(folder), self_contained=self_contained)
