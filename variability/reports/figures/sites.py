"""Figures of one probe: per-site variability and activation ratio in depth order."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from variability.reports.style import FIGURE_WIDTH, STATUS_COLOURS, apply_theme, note_floor


def _positions(names: list[str]) -> tuple[np.ndarray, list[str], int]:
    step = max(1, len(names) // 24)  # at most ~24 tick labels
    return np.arange(len(names)), names, step


def site_profile(sites: pd.DataFrame, collapsed: float, collapsing: float) -> Figure | None:
    """V (log scale) and activation ratio per site, in depth order, coloured by status.

    ``sites``: one row per site with columns name, variability, status, activation_ratio,
    dead_fraction (the output row, if present, is drawn last).
    """
    if sites.empty or "variability" not in sites:
        return None
    apply_theme()
    x, names, step = _positions(list(sites["name"]))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 6), sharex=True)
    floor = collapsed / 10
    v = np.clip(sites["variability"].astype(float).to_numpy(), floor, None)
    colours = [STATUS_COLOURS.get(s, "#777777") for s in sites["status"]]
    top.plot(x, v, color="#555555", linewidth=1, zorder=1)
    top.scatter(x, v, c=colours, s=28, zorder=2)
    top.set_yscale("log")
    top.axhline(collapsed, color=STATUS_COLOURS["collapsed"], linestyle="--", linewidth=1)
    top.axhline(collapsing, color=STATUS_COLOURS["collapsing"], linestyle=":", linewidth=1)
    top.set_ylabel("variability V (log)")
    top.set_title("Variability per site (dashed: collapsed level, dotted: collapsing level)")
    note_floor(top, sites["variability"], floor)
    ratio = sites.get("activation_ratio")
    if ratio is not None and ratio.notna().any():
        bottom.plot(x, ratio.astype(float), marker="o", label="activation ratio")
    dead = sites.get("dead_fraction")
    if dead is not None and dead.notna().any():
        bottom.plot(x, dead.astype(float), marker="s", label="dead fraction")
    bottom.set_ylim(-0.03, 1.03)
    bottom.set_ylabel("fraction of units / pairs")
    if bottom.get_legend_handles_labels()[0]:  # nothing to label for an output-only probe
        bottom.legend(loc="best")
    bottom.set_xticks(x[::step])
    bottom.set_xticklabels(names[::step], rotation=60, ha="right")
    bottom.set_xlabel("probe site (depth order)")
    figure.tight_layout()
    return figure


def unit_activation_spread(names: list[str], ratios: list[np.ndarray | None]) -> Figure | None:
    """Distribution of the per-unit activation ratio at each site (box plots)."""
    pairs = [(n, np.asarray(r, dtype=float)) for n, r in zip(names, ratios, strict=True)]
    pairs = [(n, r[np.isfinite(r)]) for n, r in pairs if r is not None]
    pairs = [(n, r) for n, r in pairs if r.size]
    if not pairs:
        return None
    apply_theme()
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 3.6))
    axis.boxplot([r for _, r in pairs], whis=(0, 100), widths=0.6)
    step = max(1, len(pairs) // 24)
    ticks = np.arange(1, len(pairs) + 1)
    axis.set_xticks(ticks[::step])
    axis.set_xticklabels([n for n, _ in pairs][::step], rotation=60, ha="right")
    axis.set_ylim(-0.03, 1.03)
    axis.set_ylabel("unit activation ratio")
    axis.set_xlabel("probe site (depth order)")
    axis.set_title("How often each unit is active (box: quartiles, whiskers: min and max)")
    figure.tight_layout()
    return figure
