"""The report of a comparison (``variability compare``): FC, LCW and Han against depth.

It takes what a comparison folder holds, already read (``ComparisonData``): the settings, the
cells' records of ``results.jsonl``, each cell's ``metrics.jsonl`` records and, for 2-D tasks,
the learned functions on the input grid. Reading the folder is the experiments layer's job
(``variability.experiments.comparison.report_data``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from variability.probes import Thresholds
from variability.reports.figures.comparison import (
    learned_function_grid,
    metric_against_depth,
    site_profiles,
    validation_curves,
    variability_and_collapse,
)
from variability.reports.figures.training import (
    activation_heatmap,
    of_type,
    site_kinds,
    variability_heatmap,
    watched_inputs,
)
from variability.reports.glossary import glossary_for
from variability.reports.page import Page, Section
from variability.reports.style import DEFAULT_INIT, family_label, series_label, shows_init
from variability.reports.text import baseline_name
from variability.reports.uniform import activation_sentence, uniform_value

DEFAULT_COLLAPSED = Thresholds.collapsed  # for records that do not say which level they used


@dataclass
class ComparisonData:
    """Everything the comparison report draws, as plain data.

    ``cells``: the records of ``results.jsonl`` in plan order. ``runs``: each cell's
    ``metrics.jsonl`` records by cell name (a missing one skips that cell's curves).
    ``learned``: a 2-D task's learned function per (family, depth), an image indexed [i, j] on
    the grid; ``target`` the task's labels on the same grid, ``extent`` the grid's box.
    ``baseline``: the score of the best constant prediction on "val" and "test" (Task.baseline).
    """

    settings: Mapping[str, Any]
    cells: list[dict[str, Any]]
    planned: int
    metric: str = "metric"
    runs: dict[str, pd.DataFrame] = field(default_factory=dict)
    learned: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    target: np.ndarray | None = None
    extent: tuple[float, float] = (-1.0, 1.0)
    provenance: Mapping[str, str] = field(default_factory=dict)
    baseline: Mapping[str, float] = field(default_factory=dict)


def cells_frame(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell, without the per-site lists; ``init`` is "default" where a record
    (made before inits were a factor) does not say."""
    frame = pd.DataFrame([{k: v for k, v in c.items() if k != "sites"} for c in cells])
    if not frame.empty:
        frame["init"] = frame["init"].fillna(DEFAULT_INIT) if "init" in frame else DEFAULT_INIT
    return frame


def names_init(frame: pd.DataFrame) -> bool:
    """Whether the comparison's inits are a factor to show: some cell's init is not the
    default (``shows_init``)."""
    return "init" in frame and shows_init(frame["init"])


def collapse_level(cells: list[dict[str, Any]]) -> float:
    levels = [level for c in cells if (level := c.get("collapsed_level")) is not None]
    return float(levels[0]) if levels else DEFAULT_COLLAPSED


BASELINE_MARGIN = 0.01
"""A mean test score within this of the baseline is at the baseline: that model learned nothing."""


def summary_table(frame: pd.DataFrame, metric: str, baseline: float | None = None) -> pd.DataFrame:
    """A row per family and depth (and init, in that order, where the inits are a factor):
    size, figures at initialisation, and the test metric (mean and sample standard deviation
    over seeds); then the baseline's row, when known."""
    rows = []
    by_init = names_init(frame)
    inits = list(dict.fromkeys(frame["init"])) if by_init else [None]
    for family in dict.fromkeys(frame["family"]):
        for depth in sorted(frame.loc[frame["family"] == family, "depth"].unique()):
            for init in inits:
                group = frame[(frame["family"] == family) & (frame["depth"] == depth)]
                if init is not None:
                    group = group[group["init"] == init]
                if group.empty:
                    continue
                rows.append(_summary_row(family, depth, init, group, metric))
    if baseline is not None and rows:
        rows.append(
            {
                **dict.fromkeys(rows[0], "-"),
                "family": f"baseline: {baseline_name(metric)}",
                f"test {metric}": f"{baseline:.3f}",
            }
        )
    return pd.DataFrame(rows)


def _summary_row(
    family: str, depth: int, init: str | None, group: pd.DataFrame, metric: str
) -> dict[str, Any]:
    test = group["test"].astype(float)
    spread = f" ± {test.std(ddof=1):.3f}" if len(test) > 1 else ""
    return {
        "family": family_label(family),
        "depth": str(int(depth)),
        **({} if init is None else {"init": str(init)}),
        "width": str(int(group["width"].iloc[0])),
        "parameters": f"{int(group['params'].iloc[0]):,}",
        "output V at init": float(group["output_variability"].astype(float).mean()),
        "C2C at init": _share(group["network_collapsed"]),
        f"test {metric}": f"{test.mean():.3f}{spread}",
        "C2C after training": _share(group["trained_collapsed"]),
    }


def _share(flags: pd.Series) -> str:
    return f"{int(flags.fillna(False).astype(bool).sum())} of {len(flags)}"


def story(frame: pd.DataFrame, metric: str, baseline: float | None = None) -> list[str]:
    """The results in sentences: where each family collapses at initialisation, who learns.

    With the baseline known, a family and depth whose mean test score is within
    ``BASELINE_MARGIN`` of it is said to be at the baseline, never to be the best. Where the
    inits are a factor, every sentence names the init too (``FC · lsuv``)."""
    lines = []
    by_init = names_init(frame)
    frame = frame.assign(init=frame["init"] if by_init else DEFAULT_INIT)
    for (family, init), group in frame.groupby(["family", "init"], sort=False):
        rates = group.groupby("depth")["network_collapsed"].agg(["sum", "count"])
        collapsed = [(d, int(r["sum"]), int(r["count"])) for d, r in rates.iterrows() if r["sum"]]
        name = series_label(str(family), str(init), by_init)
        if collapsed:
            where = ", ".join(f"{k} of {n} seeds at depth {d}" for d, k, n in collapsed)
            lines.append(f"{name} collapsed to a constant at initialisation in {where}.")
        else:
            depths = ", ".join(str(d) for d in rates.index)
            lines.append(f"{name} did not collapse at initialisation at any depth ({depths}).")
    lines.extend(failed_inits(frame))
    means = frame.groupby(["family", "init", "depth"], sort=False)["test"].mean()
    if means.empty or not means.notna().any():
        return lines
    (family, init, depth), best = means.idxmax(), means.max()
    best_name = series_label(family, init, by_init)
    if baseline is None:
        lines.append(
            f"Best mean test {metric}: {best_name} at depth {depth} ({best:.3f}), "
            "each model chosen on the validation split."
        )
        return lines
    constant = f"the {baseline_name(metric)} baseline ({baseline:.3f})"
    at_baseline = means[(means - baseline).abs() <= BASELINE_MARGIN]
    if best - baseline <= BASELINE_MARGIN:
        lines.append(
            f"No model's mean test {metric} is above {constant}: none learned the task beyond "
            "what a constant prediction scores."
        )
        return lines
    lines.append(
        f"Best mean test {metric}: {best_name} at depth {depth}, {best:.3f} against "
        f"the {baseline_name(metric)} baseline of {baseline:.3f} (each model chosen on the "
        "validation split)."
    )
    for (name, init), group in at_baseline.groupby(level=[0, 1], sort=False):
        stayed = [str(d) for d in group.index.get_level_values(2)]
        where = f"depth {stayed[0]}" if len(stayed) == 1 else f"depths {', '.join(stayed)}"
        lines.append(
            f"{series_label(name, init, by_init)} stayed at the baseline at {where}: its mean test "
            f"{metric} is within {BASELINE_MARGIN:g} of {baseline:.3f}."
        )
    return lines


def failed_inits(frame: pd.DataFrame) -> list[str]:
    """A sentence per init the remedy could not apply to some models (``init_failed`` in their
    records): those models trained as built, with the family's own weights."""
    if "init_failed" not in frame:
        return []
    failed = frame[frame["init_failed"].notna() & (frame["init_failed"] != "")]
    lines = []
    for init, group in failed.groupby("init", sort=False):
        cells = ", ".join(map(str, group["cell"]))
        lines.append(
            f"The {init} remedy failed on {len(group)} model{'s' if len(group) > 1 else ''} "
            f"({cells}), which trained as built: {group['init_failed'].iloc[0]}"
        )
    return lines


def chosen_cells(cells: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """One model per family and init for the per-site figures: the deepest, lowest seed; keyed
    by (family, init)."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in cells:
        key = (cell["family"], cell.get("init") or DEFAULT_INIT)
        best = chosen.get(key)
        if best is None or (cell["depth"], -cell["seed"]) > (best["depth"], -best["seed"]):
            chosen[key] = cell
    return chosen


def validation_frame(cells: list[dict[str, Any]], runs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The validation evaluations of every cell, with the cell's family, depth, init and seed."""
    parts = []
    for cell in cells:
        evals = of_type(runs.get(cell["cell"], pd.DataFrame()), "eval")
        if evals.empty or "metric" not in evals:
            continue
        if "split" in evals:
            evals = evals[evals["split"] == "val"]
        parts.append(
            evals[["step", "metric"]].assign(
                family=cell["family"],
                depth=cell["depth"],
                init=cell.get("init") or DEFAULT_INIT,
                seed=cell["seed"],
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def describe(settings: Mapping[str, Any], planned: int) -> str:
    families = ", ".join(family_label(f) for f in settings.get("families", []))
    depths = ", ".join(str(d) for d in settings.get("depths", []))
    inits = settings.get("inits") or [DEFAULT_INIT]
    named = f", initialised by {', '.join(inits)}" if shows_init(inits) else ""
    return (
        f"{planned} models: {families} at depths {depths}{named}, {settings.get('seeds')} seeds "
        "each, "
        f"at a budget of {settings.get('params'):,} parameters; "
        f"{settings.get('steps'):,} steps of {settings.get('optimizer')} "
        f"(lr {settings.get('lr')}, batch {settings.get('batch_size')}); "
        f"each model within {float(settings.get('tolerance', 0.05)):.0%} of the budget."
    )


def build_comparison_page(data: ComparisonData, *, title: str | None = None) -> Page:
    """The comparison report: summary, C2C against depth, per-site views, training, functions."""
    settings = data.settings
    frame = cells_frame(data.cells)
    metric = data.metric
    collapsed = collapse_level(data.cells)
    task = settings.get("task", "the task")
    page = Page(
        title or f"FC, LCW and Han on {task} at {settings.get('params'):,} parameters",
        describe(settings, data.planned),
    )
    summary = page.section("Summary")
    if len(data.cells) < data.planned:
        summary.note(
            f"Only {len(data.cells)} of {data.planned} models have finished; the figures show "
            "those. Run the same command again to finish the comparison."
        )
    if frame.empty:
        summary.paragraph("No model has finished yet: there is nothing to draw.")
        _how_made(page, data)
        return page
    test_baseline = data.baseline.get("test")
    for line in story(frame, metric, test_baseline):
        summary.paragraph(line)
    summary.table(
        summary_table(frame, metric, test_baseline),
        caption=f"Every family and depth{' and init' if names_init(frame) else ''}: width and "
        "exact parameter count (the same for every seed); mean output variability and the "
        "seeds collapsed to a constant (C2C) at "
        "initialisation; test metric (mean ± standard deviation over seeds) of the checkpoint "
        "chosen on validation, and the seeds whose chosen checkpoint is collapsed. Last row: "
        f"the baseline, the {baseline_name(metric)}, which is what a model collapsed to a "
        "constant scores.",
    )

    init = page.section("Collapse to constants at initialisation")
    init.figure(
        variability_and_collapse(frame, collapsed),
        "variability_and_c2c",
        "Left: output variability V of each freshly built model on the probe set (dots: seeds, "
        f"line: mean; dashed: the collapse level V = {collapsed:g}, values below a tenth of it "
        "drawn there). Right: the share of seeds whose output is collapsed.",
    )
    chosen = chosen_cells(data.cells)
    by_init = names_init(frame)
    profiles = {key: pd.DataFrame(c.get("sites") or []) for key, c in chosen.items()}
    names = "; ".join(f"{series_label(*key, by_init)}: {c['cell']}" for key, c in chosen.items())
    init.figure(
        site_profiles(profiles, collapsed),
        "site_profiles",
        f"Variability V (top) and activation ratio (bottom) at every hidden layer of one model "
        f"per family{' and init' if by_init else ''} at initialisation, the deepest with the "
        f"first seed ({names}).",
    )
    init.figure(
        metric_against_depth(frame, "v3", "V3 at initialisation"),
        "v3",
        "V3 of each model at initialisation: how wiggly the function it draws over the input box "
        "is (0 for a constant). Dots: seeds; line: mean; band: min to max.",
    )
    init.figure(
        metric_against_depth(frame, "pieces_per_line", "pieces per line at initialisation"),
        "pieces_per_line",
        "Linear pieces the network draws along random segments through the probe inputs, at "
        "initialisation: one more than the number of changes of its activation pattern (for "
        "Abs and Han units, which side of 0 each pre-activation is on).",
    )

    trained = page.section("After training")
    constant = baseline_name(metric)
    trained.figure(
        metric_against_depth(
            frame, "test", f"test {metric}", test_baseline, f"baseline: {constant}"
        ),
        "test_metric",
        f"Test {metric} of each model's checkpoint chosen on the validation split (dots: seeds; "
        f"line: mean; band: min to max; dashed: the {constant}, what a constant prediction "
        "scores).",
    )
    trained.figure(
        validation_curves(
            validation_frame(data.cells, data.runs), metric, data.baseline.get("val"), constant
        ),
        "validation_curves",
        f"Validation {metric} at every evaluation during training, a line per model (dashed: "
        f"the {constant} on the validation split).",
    )
    if data.target is not None:
        trained.figure(
            learned_function_grid(data.target, data.learned, data.extent),
            "learned_functions",
            "The target beside each family's learned function at each depth (the model chosen "
            "on validation, first seed), evaluated on the whole input grid.",
        )

    maps = page.section("Where signal dies, step by step")
    maps.paragraph(
        "For the same model per family as above, every probe site's variability and activation "
        "ratio on the probe set at every recorded step (rows: sites in depth order, the output "
        "last; columns: steps)."
    )
    for (family, how), cell in chosen.items():
        runs = data.runs.get(cell["cell"], pd.DataFrame())
        _heatmaps(maps, family, how if by_init else None, cell, runs, collapsed)

    page.section("What the figures mean").definitions(
        glossary_for(
            "Parameter budget",
            "Probe site",
            "Variability (V)",
            "Collapsed / collapsing",
            "Collapse to constants (C2C)",
            "C2C rate",
            "Activation ratio (AR)",
            "V3",
            "Pieces per line",
            "Chosen on validation",
            "Learned function",
        )
    )
    _how_made(page, data)
    return page


def _heatmaps(
    section: Section,
    family: str,
    init: str | None,
    cell: dict[str, Any],
    records: pd.DataFrame,
    collapsed: float,
) -> None:
    """A model's heatmaps; ``init`` named (in the label and file names) where it is a factor."""
    probes = of_type(records, "probe")
    inputs = watched_inputs(probes)
    watched = probes[probes["inputs"] == inputs] if inputs else pd.DataFrame()
    name = family_label(family) if init is None else series_label(family, init, True)
    label = f"{name} ({cell['cell']}, width {cell['width']})"
    key = family if init is None else f"{family}_{init}"
    section.figure(
        variability_heatmap(watched, collapsed),
        f"heatmap_variability_{key}",
        f"{label}: variability V per site and step (log colour scale; darkest: collapsed).",
    )
    ratio = uniform_value(watched, "activation_ratio")
    if ratio is None:
        section.figure(
            activation_heatmap(watched),
            f"heatmap_activation_{key}",
            f"{label}: activation ratio per site and step.",
        )
    else:
        section.paragraph(f"{label}: {activation_sentence(ratio, site_kinds(watched))}")


def _how_made(page: Page, data: ComparisonData) -> None:
    settings = {k: _text(v) for k, v in data.settings.items()}
    seeds = int(data.settings.get("seeds", 0))
    made = {
        **(data.provenance or {}),
        "model seeds": ", ".join(str(s) for s in range(seeds)),
        "task split seed": str(data.settings.get("task_seed")),
        "finished models": f"{len(data.cells)} of {data.planned}",
    }
    section = page.section("How this report was made")
    section.table(pd.DataFrame({"item": list(made), "value": list(made.values())}))
    section.table(
        pd.DataFrame({"setting": list(settings), "value": list(settings.values())}),
        caption="The comparison's settings (compare.json)",
    )


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return "default" if value is None else str(value)


def write_comparison_report(
    data: ComparisonData, folder: str | os.PathLike[str], *, self_contained: bool = False
) -> Path:
    """Write the report folder atomically; returns the path of its ``index.html``."""
    return build_comparison_page(data).write(Path(folder), self_contained=self_contained)


__all__ = [
    "ComparisonData",
    "build_comparison_page",
    "cells_frame",
    "chosen_cells",
    "failed_inits",
    "names_init",
    "story",
    "summary_table",
    "write_comparison_report",
]
