"""Figures of a comparison: families against depth, at one parameter budget."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from variability.reports.style import apply_theme, family_colour, family_label


def _depth_axis(axis: plt.Axes, depths: list[int]) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks(depths)
    axis.set_xticklabels([str(d) for d in depths])
    axis.minorticks_off()
    axis.set_xlabel("depth (hidden layers, log scale)")


def _by_family(cells: pd.DataFrame, column: str):
    for family, group in cells.groupby("family", sort=False):
        values = group[["depth", column]].dropna()
        if values.empty:
            continue
        stats = values.groupby("depth")[column].agg(["mean", "min", "max"]).reset_index()
        yield family, values, stats


def variability_and_collapse(cells: pd.DataFrame, collapsed: float) -> Figure | None:
    """Output V at initialisation (each seed a dot, the line the mean) and the C2C rate."""
    needed = {"family", "depth", "output_variability", "network_collapsed"}
    if cells.empty or not needed <= set(cells.columns):
        return None
    apply_theme()
    depths = sorted(cells["depth"].unique())
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    floor = collapsed / 10
    jitter = {f: 1 + 0.04 * (i - 1) for i, f in enumerate(cells["family"].unique())}
    for family, values, stats in _by_family(cells, "output_variability"):
        colour = family_colour(family)
        v = np.clip(values["output_variability"].to_numpy(float), floor, None)
        left.scatter(values["depth"] * jitter[family], v, color=colour, alpha=0.5, s=18)
        left.plot(
            stats["depth"],
            np.clip(stats["mean"], floor, None),
            color=colour,
            marker="o",
            label=family_label(family),
        )
    left.set_yscale("log")
    left.axhline(collapsed, color="#b2182b", linestyle="--", linewidth=1)
    left.set_ylabel("output variability V at init (log)")
    left.set_title("Output variability at initialisation")
    _depth_axis(left, depths)
    left.legend()
    rate = (
        cells.assign(c2c=cells["network_collapsed"].astype(float))
        .groupby(["family", "depth"], sort=False)["c2c"]
        .mean()
        .reset_index()
    )
    for family, group in rate.groupby("family", sort=False):
        right.plot(
            group["depth"],
            group["c2c"],
            color=family_colour(family),
            marker="o",
            label=family_label(family),
        )
    right.set_ylim(-0.03, 1.03)
    right.set_ylabel("share of seeds collapsed (C2C)")
    right.set_title("Collapse to constants at initialisation")
    _depth_axis(right, depths)
    right.legend()
    figure.tight_layout()
    return figure


def metric_against_depth(cells: pd.DataFrame, column: str, label: str) -> Figure | None:
    """A per-cell number (test metric, V3, pieces per line) against depth, per family."""
    if cells.empty or column not in cells or cells[column].isna().all():
        return None
    apply_theme()
    depths = sorted(cells["depth"].unique())
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for family, values, stats in _by_family(cells, column):
        colour = family_colour(family)
        axis.scatter(values["depth"], values[column], color=colour, alpha=0.45, s=16)
        label_text = family_label(family)
        axis.plot(stats["depth"], stats["mean"], color=colour, marker="o", label=label_text)
        axis.fill_between(stats["depth"], stats["min"], stats["max"], color=colour, alpha=0.15)
    axis.set_ylabel(label)
    axis.set_title(f"{label} against depth (line: mean over seeds, band: min to max)")
    _depth_axis(axis, depths)
    axis.legend()
    figure.tight_layout()
    return figure


def site_profiles(profiles: dict[str, pd.DataFrame], collapsed: float) -> Figure | None:
    """Per-site V and activation ratio through depth, one model per family."""
    profiles = {k: v for k, v in profiles.items() if not v.empty}
    if not profiles:
        return None
    apply_theme()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    floor = collapsed / 10
    for family, sites in profiles.items():
        colour = family_colour(family)
        position = np.arange(1, len(sites) + 1)
        top.plot(
            position,
            np.clip(sites["variability"].to_numpy(float), floor, None),
            color=colour,
            marker=".",
            label=family_label(family),
        )
        ratio = sites["activation_ratio"].astype(float)
        bottom.plot(position, ratio, color=colour, marker=".", label=family_label(family))
    top.set_yscale("log")
    top.axhline(collapsed, color="#b2182b", linestyle="--", linewidth=1)
    top.set_ylabel("site variability V (log)")
    top.set_title("Through the network at initialisation (one model per family)")
    top.legend()
    bottom.set_ylim(-0.03, 1.03)
    bottom.set_ylabel("activation ratio")
    bottom.set_xlabel("hidden layer (probe site in depth order)")
    figure.tight_layout()
    return figure


def learned_functions(
    target: np.ndarray, learned: dict[str, np.ndarray], extent: tuple[float, float]
) -> Figure | None:
    """The target on a 2-D grid beside each family's learned function."""
    if target is None or not learned:
        return None
    apply_theme()
    panels = [("target", target), *learned.items()]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    axes = np.atleast_1d(axes)
    low, high = extent
    for axis, (title, image) in zip(axes, panels, strict=True):
        # image[i, j]: i along the first input coordinate (drawn horizontally), j the second
        axis.imshow(
            np.asarray(image, dtype=float).T,
            origin="lower",
            extent=(low, high, low, high),
            cmap="gray_r",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        axis.set_title(family_label(title) if title != "target" else "target")
        axis.set_xlabel("x1")
        axis.grid(False)
    axes[0].set_ylabel("x2")
    figure.tight_layout()
    return figure
