"""Figures of a comparison: families against depth, at one parameter budget.

Where a comparison's inits are a factor (a cell's ``init`` other than "default"), each (family,
init) is a series of its own: the family's colour, the init's line style, labelled ``FC · lsuv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from variability.reports.style import (
    DEFAULT_INIT,
    FIGURE_WIDTH,
    INIT_LINESTYLES,
    apply_theme,
    family_colour,
    family_label,
    note_floor,
    series_label,
    shows_init,
)

Series = tuple[str, str]
"""A line of a figure: (family, init)."""


def _with_init(cells: pd.DataFrame) -> pd.DataFrame:
    if "init" in cells:
        return cells.assign(init=cells["init"].fillna(DEFAULT_INIT))
    return cells.assign(init=DEFAULT_INIT)


def _styles(series: list[Series]) -> dict[Series, dict[str, Any]]:
    """Colour by family, line style by init, and the label (naming the init where any is not
    the default)."""
    inits = list(dict.fromkeys(init for _, init in series))
    named = shows_init(inits)
    return {
        (family, init): {
            "color": family_colour(family),
            "linestyle": INIT_LINESTYLES[inits.index(init) % len(INIT_LINESTYLES)],
            "label": series_label(family, init, named),
        }
        for family, init in series
    }


def _depth_axis(axis: Axes, depths: list[int]) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks(depths)
    axis.set_xticklabels([str(d) for d in depths])
    axis.minorticks_off()
    axis.set_xlabel("depth (hidden layers, log scale)")


def _by_series(
    cells: pd.DataFrame, column: str
) -> Iterator[tuple[Series, dict[str, Any], pd.DataFrame, pd.DataFrame]]:
    """Per (family, init): its style, its cells' (depth, column) values and their statistics."""
    cells = _with_init(cells)
    groups = list(cells.groupby(["family", "init"], sort=False))
    styles = _styles([(str(f), str(i)) for (f, i), _ in groups])
    for (family, init), group in groups:
        values = group[["depth", column]].dropna()
        if values.empty:
            continue
        stats = values.groupby("depth")[column].agg(["mean", "min", "max"]).reset_index()
        key = (str(family), str(init))
        yield key, styles[key], values, stats


def variability_and_collapse(cells: pd.DataFrame, collapsed: float) -> Figure | None:
    """Output V at initialisation (each seed a dot, the line the mean) and the C2C rate."""
    needed = {"family", "depth", "output_variability", "network_collapsed"}
    if cells.empty or not needed <= set(cells.columns):
        return None
    apply_theme()
    depths = sorted(cells["depth"].unique())
    figure, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 4))
    floor = collapsed / 10
    cells = _with_init(cells)
    series = list(dict.fromkeys(zip(cells["family"], cells["init"], strict=True)))
    jitter = {key: 1 + 0.04 * (i - 1) for i, key in enumerate(series)}
    for key, style, values, stats in _by_series(cells, "output_variability"):
        v = np.clip(values["output_variability"].to_numpy(float), floor, None)
        left.scatter(values["depth"] * jitter[key], v, color=style["color"], alpha=0.5, s=18)
        left.plot(stats["depth"], np.clip(stats["mean"], floor, None), marker="o", **style)
    left.set_yscale("log")
    left.axhline(
        collapsed,
        color="#b2182b",
        linestyle="--",
        linewidth=1,
        label=f"collapsed: V ≤ {collapsed:g}",
    )
    left.set_ylabel("output variability V at init (log)")
    left.set_title("Output variability at initialisation")
    note_floor(left, cells["output_variability"], floor)
    _depth_axis(left, depths)
    left.legend(loc="best")
    rate = cells.assign(c2c=cells["network_collapsed"].astype(float))
    for _key, style, _values, stats in _by_series(rate, "c2c"):
        right.plot(stats["depth"], stats["mean"], marker="o", **style)
    right.set_ylim(-0.03, 1.03)
    right.set_ylabel("C2C rate: share of seeds collapsed")
    right.set_title("Collapse to constants at initialisation")
    _depth_axis(right, depths)
    right.legend()
    figure.tight_layout()
    return figure


def _baseline(axis: Axes, value: float | None, label: str) -> None:
    """The score of a constant prediction, as a dashed line an accuracy must rise above."""
    if value is not None:
        axis.axhline(value, color="0.35", linestyle="--", linewidth=1.2, label=label)


def metric_against_depth(
    cells: pd.DataFrame,
    column: str,
    label: str,
    baseline: float | None = None,
    baseline_label: str = "baseline",
) -> Figure | None:
    """A per-cell number (test metric, V3, pieces per line) against depth, per family; for a
    score, the baseline's level as a dashed line."""
    if cells.empty or column not in cells or cells[column].isna().all():
        return None
    apply_theme()
    depths = sorted(cells["depth"].unique())
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 4))
    for _key, style, values, stats in _by_series(cells, column):
        colour = style["color"]
        axis.scatter(values["depth"], values[column], color=colour, alpha=0.45, s=16)
        axis.plot(stats["depth"], stats["mean"], marker="o", **style)
        axis.fill_between(stats["depth"], stats["min"], stats["max"], color=colour, alpha=0.15)
    if baseline is not None:
        _baseline(axis, baseline, f"{baseline_label} ({baseline:.3f})")
    axis.set_ylabel(label)
    axis.set_title(f"{label} against depth (line: mean over seeds, band: min to max)")
    _depth_axis(axis, depths)
    axis.legend()
    figure.tight_layout()
    return figure


def site_profiles(profiles: dict[Series, pd.DataFrame], collapsed: float) -> Figure | None:
    """Per-site V and activation ratio through depth, one model per (family, init)."""
    profiles = {k: v for k, v in profiles.items() if not v.empty}
    if not profiles:
        return None
    apply_theme()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 6), sharex=True)
    floor = collapsed / 10
    styles = _styles(list(profiles))
    for key, sites in profiles.items():
        position = np.arange(1, len(sites) + 1)
        variability = np.clip(sites["variability"].to_numpy(float), floor, None)
        top.plot(position, variability, marker=".", **styles[key])
        ratio = sites["activation_ratio"].astype(float)
        bottom.plot(position, ratio, marker=".", **styles[key])
    top.set_yscale("log")
    top.axhline(collapsed, color="#b2182b", linestyle="--", linewidth=1)
    note_floor(top, pd.concat([p["variability"] for p in profiles.values()]), floor)
    top.set_ylabel("site variability V (log)")
    top.set_title("Through the network at initialisation (one model per family)")
    top.legend()
    bottom.set_ylim(-0.03, 1.03)
    bottom.set_ylabel("activation ratio")
    bottom.set_xlabel("hidden layer (probe site in depth order)")
    figure.tight_layout()
    return figure


def validation_curves(
    curves: pd.DataFrame, metric: str, baseline: float | None = None, constant: str = "baseline"
) -> Figure | None:
    """Validation metric against step: a panel per depth, a line per cell, coloured by family
    (styled by init where inits are a factor); the baseline (the ``constant`` prediction's
    score) dashed.

    ``curves``: one row per evaluation, columns family, depth, seed, step, metric (and init).
    """
    needed = {"family", "depth", "seed", "step", "metric"}
    if curves.empty or not needed <= set(curves.columns):
        return None
    apply_theme()
    curves = _with_init(curves)
    styles = _styles(list(dict.fromkeys(zip(curves["family"], curves["init"], strict=True))))
    depths = sorted(curves["depth"].unique())
    figure, axes = plt.subplots(
        1, len(depths), figsize=(FIGURE_WIDTH, 3.6), sharey=True, squeeze=False
    )
    for axis, depth in zip(axes[0], depths, strict=True):
        at_depth = curves[curves["depth"] == depth]
        for (family, init, _seed), rows in at_depth.groupby(["family", "init", "seed"], sort=False):
            rows = rows.sort_values("step")
            style = {k: v for k, v in styles[(family, init)].items() if k != "label"}
            axis.plot(rows["step"], rows["metric"], alpha=0.8, **style)
        _baseline(axis, baseline, constant)
        axis.set_title(f"depth {depth}")
        axis.set_xlabel("step")
    axes[0][0].set_ylabel(f"validation {metric}")
    handles = [Line2D([], [], **style) for style in styles.values()]
    if baseline is not None:
        handles.append(
            Line2D([], [], color="0.35", linestyle="--", label=f"{constant} ({baseline:.3f})")
        )
    axes[0][-1].legend(handles=handles, loc="best")
    figure.suptitle(f"Validation {metric} during training (a line per seed)", fontweight="bold")
    figure.tight_layout()
    return figure


def learned_function_grid(
    target: np.ndarray | None,
    images: dict[tuple[str, int], np.ndarray],
    extent: tuple[float, float],
) -> Figure | None:
    """A 2-D task's target beside each (family, depth) model's learned function.

    ``images[(family, depth)][i, j]``: the output (a row may be a label, ``FC · lsuv``, shown as
    it is) at grid point (i, j), i along the first input
    coordinate (drawn horizontally). Drawn on the target's 0-to-1 scale, which the colour bar
    shows; outputs beyond it are drawn at its ends.
    """
    if target is None or not images:
        return None
    apply_theme()
    families = list(dict.fromkeys(f for f, _ in images))
    depths = sorted({d for _, d in images})
    rows, columns = len(families), len(depths) + 1
    side = (FIGURE_WIDTH - 1.2) / columns
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(FIGURE_WIDTH, side * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    drawn = []
    for row, family in enumerate(families):
        if row == 0:
            drawn.append(draw_function_image(axes[row][0], target, "target", extent))
        else:
            axes[row][0].axis("off")
        for column, depth in enumerate(depths, start=1):
            axis = axes[row][column]
            if (family, depth) in images:
                title = f"{family_label(family)}, depth {depth}"
                drawn.append(draw_function_image(axis, images[(family, depth)], title, extent))
            else:
                axis.axis("off")
    function_colour_bar(figure, drawn[0], axes)
    figure.suptitle("Learned functions on the input grid", fontweight="bold")
    return figure


def function_colour_bar(figure: Figure, image: AxesImage, axes: np.ndarray) -> None:
    """The scale of every function image: 0 (white) to 1 (black), the target's labels."""
    bar = figure.colorbar(image, ax=list(np.ravel(axes)), shrink=0.8, pad=0.02)
    bar.set_label("model output (target: 1 on the board's dark squares)")


def draw_function_image(
    axis: Axes, image: np.ndarray, title: str, extent: tuple[float, float]
) -> AxesImage:
    """One function on a square 2-D grid, on the target's 0-to-1 scale: ``image[i, j]`` at grid
    point (i, j), i along the first input coordinate (drawn horizontally)."""
    low, high = extent
    drawn = axis.imshow(
        np.asarray(image, dtype=float).T,
        origin="lower",
        extent=(low, high, low, high),
        cmap="gray_r",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    axis.set_title(title)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.grid(False)
    return drawn
