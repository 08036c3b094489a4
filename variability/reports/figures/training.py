"""Figures of a training run: curves, site x step heatmaps, gradient RMS per site.

Each function takes the records of ``metrics.jsonl`` as a DataFrame (``read_metrics``: one row
per record, a ``type`` column) or the rows of one type, so the comparison report can pass its own
frames. A function returns None, and the page notes the skipped figure, when the data it needs is
missing.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from variability.probes import Thresholds
from variability.reports.style import FIGURE_WIDTH, PALETTE, STATUS_COLOURS, apply_theme

OUTPUT = "output"


def of_type(records: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of one record type (an empty frame when there are none)."""
    if records.empty or "type" not in records:
        return pd.DataFrame()
    return records[records["type"] == kind]


def watched_inputs(probes: pd.DataFrame) -> str | None:
    """The inputs whose figures a report draws: the fixed probe set when there is one."""
    if probes.empty or "inputs" not in probes:
        return None
    present = set(probes["inputs"].dropna())
    return "probe_set" if "probe_set" in present else ("batch" if "batch" in present else None)


def site_order(probes: pd.DataFrame) -> list[str]:
    """Site names in depth order, the output last."""
    depth = probes.groupby("site")["depth"].min().sort_values(kind="stable")
    names = [n for n in depth.index if n != OUTPUT]
    return names + ([OUTPUT] if OUTPUT in depth.index else [])


def site_kinds(probes: pd.DataFrame) -> list[str]:
    """The activation kinds of the hidden sites (the output left out)."""
    if probes.empty or "kind" not in probes or "site" not in probes:
        return []
    return sorted(set(probes.loc[probes["site"] != OUTPUT, "kind"].dropna()))


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return not frame.empty and all(c in frame and frame[c].notna().any() for c in columns)


def training_curves(
    steps: pd.DataFrame,
    evals: pd.DataFrame,
    metric: str = "metric",
    best_step: int | None = None,
    baseline: float | None = None,
    baseline_label: str = "baseline",
) -> Figure | None:
    """Loss against step (training batches and validation), and beside it the validation
    metric with the baseline's level dashed; a run with no validation metric gets the loss
    panel alone, not an empty one.

    ``steps``: rows with ``step`` and ``loss`` (mean training loss since the previous record).
    ``evals``: rows with ``step``, ``loss`` and ``metric`` (validation). ``metric`` names it.
    """
    has_train = _has(steps, "step", "loss")
    has_eval = _has(evals, "step", "loss")
    has_metric = _has(evals, "step", "metric")
    if not (has_train or has_eval):
        return None
    apply_theme()
    figure, axes = plt.subplots(
        1, 2 if has_metric else 1, figsize=(FIGURE_WIDTH, 3.8), squeeze=False
    )
    left = axes[0][0]
    positive = True
    if has_train:
        train = steps.dropna(subset=["loss"]).sort_values("step")
        left.plot(train["step"], train["loss"], color=PALETTE[0], label="training batches")
        positive &= bool((train["loss"] > 0).all())
    if has_eval:
        val = evals.dropna(subset=["loss"]).sort_values("step")
        left.plot(val["step"], val["loss"], color=PALETTE[1], marker=".", label="validation")
        positive &= bool((val["loss"] > 0).all())
    if positive:
        left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("loss" + (" (log)" if positive else ""))
    left.set_title("Loss")
    left.legend()
    if has_metric:
        right = axes[0][1]
        val = evals.dropna(subset=["metric"]).sort_values("step")
        right.plot(val["step"], val["metric"], color=PALETTE[1], marker=".", label="validation")
        if baseline is not None:
            right.axhline(
                baseline,
                color="0.35",
                linestyle="--",
                linewidth=1.2,
                label=f"{baseline_label} ({baseline:.3f})",
            )
        if best_step is not None:
            right.axvline(best_step, color="#555555", linestyle="--", linewidth=1)
            right.text(
                best_step, right.get_ylim()[0], " chosen", rotation=90, va="bottom", fontsize=8
            )
        right.set_ylabel(metric)
        right.set_xlabel("step")
        right.set_title(f"Validation {metric}")
        right.legend()
    figure.tight_layout()
    return figure


def site_heatmap(
    probes: pd.DataFrame,
    value: str,
    label: str,
    *,
    log: bool = False,
    floor: float | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
) -> Figure | None:
    """A site x step heatmap of one figure (``value``), sites in depth order, output last.

    ``probes``: ``probe`` records of one kind of inputs (columns step, site, depth, ``value``).
    ``log``: colour on a log scale, values below ``floor`` drawn at ``floor``.
    """
    if not _has(probes, "step", "site", "depth", value):
        return None
    data = probes.dropna(subset=[value])
    table = data.pivot_table(index="site", columns="step", values=value, aggfunc="last")
    table = table.reindex([s for s in site_order(data) if s in table.index])
    if table.empty:
        return None
    apply_theme()
    matrix = table.to_numpy(dtype=float)
    if log:
        low = floor if floor is not None else np.nanmin(matrix[matrix > 0], initial=1e-12)
        matrix = np.clip(matrix, low, None)
        norm: Normalize = LogNorm(vmin=vmin or low, vmax=vmax or max(np.nanmax(matrix), low * 10))
    else:
        norm = Normalize(vmin=vmin, vmax=vmax)
    steps = table.columns.to_numpy()
    sites = list(table.index)
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, min(12.0, 2.0 + 0.24 * len(sites))))
    image = axis.imshow(
        np.ma.masked_invalid(matrix), aspect="auto", interpolation="nearest", cmap=cmap, norm=norm
    )
    tick_step = max(1, len(steps) // 12)
    axis.set_xticks(np.arange(len(steps))[::tick_step])
    axis.set_xticklabels([str(int(s)) for s in steps[::tick_step]], rotation=45, ha="right")
    site_step = max(1, len(sites) // 30)
    axis.set_yticks(np.arange(len(sites))[::site_step])
    axis.set_yticklabels(sites[::site_step])
    axis.set_xlabel("step")
    axis.set_ylabel("probe site (depth order)")
    axis.grid(False)
    colourbar = figure.colorbar(image, ax=axis, pad=0.02)
    colourbar.set_label(label)
    axis.set_title(f"{label} at every site and recorded step")
    figure.tight_layout()
    return figure


def variability_heatmap(
    probes: pd.DataFrame, collapsed: float = Thresholds.collapsed
) -> Figure | None:
    """V per site and step on a log colour scale; values below a tenth of the collapse level
    are drawn at that floor."""
    return site_heatmap(
        probes,
        "variability",
        "variability V (log)",
        log=True,
        floor=collapsed / 10,
        vmin=collapsed / 10,
        vmax=1.0,
    )


def activation_heatmap(probes: pd.DataFrame) -> Figure | None:
    """Activation ratio per site and step (sites without one, such as the output, are left out)."""
    if probes.empty or "activation_ratio" not in probes:
        return None
    return site_heatmap(
        probes, "activation_ratio", "activation ratio", vmin=0.0, vmax=1.0, cmap="cividis"
    )


def gradient_rms(probes: pd.DataFrame) -> Figure | None:
    """The RMS gradient of the loss at each site's output against step, one line per site,
    coloured by depth (log scale: vanishing gradients show as lines falling apart)."""
    if not _has(probes, "step", "site", "depth", "gradient_rms"):
        return None
    measured = probes.dropna(subset=["gradient_rms"])
    data = measured[measured["gradient_rms"] > 0]
    if data.empty:
        return None
    silent = sorted(set(measured["site"]) - set(data["site"]), key=site_order(measured).index)
    apply_theme()
    hidden = [s for s in site_order(data) if s != OUTPUT]
    depth_map = ListedColormap(plt.get_cmap("viridis")(np.linspace(0.0, 0.9, 256)))  # no pale end
    colours = depth_map(np.linspace(0.0, 1.0, max(len(hidden), 2)))
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 4.2))
    for colour, site in zip(colours, hidden, strict=False):
        rows = data[data["site"] == site].sort_values("step")
        axis.plot(rows["step"], rows["gradient_rms"], color=colour, linewidth=1.2)
    output = data[data["site"] == OUTPUT].sort_values("step")
    if not output.empty:
        axis.plot(
            output["step"], output["gradient_rms"], color="#222222", linestyle="--", label="output"
        )
        axis.legend(loc="best")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("gradient RMS at the site's output (log)")
    axis.set_title("Gradient of the loss at each site, coloured by depth")
    if silent:
        shown = ", ".join(silent[:6]) + (f" and {len(silent) - 6} more" if len(silent) > 6 else "")
        axis.text(
            0.01,
            0.02,
            f"gradient exactly 0 at every recorded step (not drawn): {shown}",
            transform=axis.transAxes,
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
    mappable = plt.cm.ScalarMappable(cmap=depth_map, norm=Normalize(1, max(len(hidden), 2)))
    colourbar = figure.colorbar(mappable, ax=axis, pad=0.02)
    colourbar.set_label("site number in depth order (1 = first)")
    colourbar.locator = MaxNLocator(integer=True)
    colourbar.update_ticks()
    figure.tight_layout()
    return figure


def output_variability(probes: pd.DataFrame, collapsed: float, collapsing: float) -> Figure | None:
    """The output's V against step, with the collapse levels (the run's C2C story in one line)."""
    if not _has(probes, "step", "site", "variability"):
        return None
    rows = probes[probes["site"] == OUTPUT].dropna(subset=["variability"]).sort_values("step")
    if rows.empty:
        return None
    apply_theme()
    floor = collapsed / 10
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 3.2))
    axis.plot(rows["step"], np.clip(rows["variability"], floor, None), color=PALETTE[2], marker=".")
    axis.axhline(collapsed, color=STATUS_COLOURS["collapsed"], linestyle="--", linewidth=1)
    axis.axhline(collapsing, color=STATUS_COLOURS["collapsing"], linestyle=":", linewidth=1)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("output V (log)")
    axis.set_title("Output variability (dashed: collapsed level, dotted: collapsing level)")
    figure.tight_layout()
    return figure
