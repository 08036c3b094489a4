"""Figures of the reproductions (docs/reproductions.md): each takes a DataFrame of per-model
records and returns a figure, or None when the data it needs is missing."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from variability.reports.figures.comparison import draw_function_image, function_colour_bar
from variability.reports.style import FIGURE_WIDTH, apply_theme, family_colour, family_label

FUNCTION_COLUMNS = 3
"""Learned-function panels a row."""
TITLE_CHARACTERS = 24
"""A learned-function panel's title is wrapped at this many characters."""


def _colour(key: str, colours: Mapping[str, str] | None) -> tuple[float, float, float]:
    return family_colour((colours or {}).get(key, key))


def _baseline(axis: Axes, baseline: tuple[float, str] | None) -> None:
    """The score of a constant prediction, dashed: what a model must rise above."""
    if baseline is not None:
        value, name = baseline
        axis.axhline(
            value, color="0.35", linestyle="--", linewidth=1.2, label=f"{name} ({value:.3f})"
        )


def _log2_depths(axis: Axes, depths: Sequence[int]) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks(list(depths))
    axis.set_xticklabels([str(d) for d in depths])
    axis.minorticks_off()


def against_depth(
    frame: pd.DataFrame,
    panels: Sequence[tuple[str, str, bool]],
    hue: str,
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    facet: str | None = None,
    floor: float = 1e-4,
    baseline: tuple[float, str] | None = None,
) -> Figure | None:
    """One panel per ``(column, label, log)``, one row per ``facet`` value: the mean over seeds
    against depth (log 2 axis) for each ``hue`` value, with a band from the 25th to the 75th
    percentile over seeds (none for 0/1 columns such as a C2C verdict, whose mean is a rate).
    On a log axis, values below ``floor`` are drawn at it. ``baseline``: (score, name) of a
    constant prediction, dashed on every panel (for scores)."""
    needed = {"depth", hue, *(column for column, _, _ in panels)} | ({facet} if facet else set())
    if frame.empty or not needed <= set(frame.columns):
        return None
    apply_theme()
    facets = list(dict.fromkeys(frame[facet])) if facet else [None]
    figure, axes = plt.subplots(
        len(facets), len(panels), figsize=(FIGURE_WIDTH, 3.3 * len(facets)), squeeze=False
    )
    depths = sorted(frame["depth"].unique())
    for row, value in enumerate(facets):
        part = frame if facet is None else frame[frame[facet] == value]
        for col, (column, label, log) in enumerate(panels):
            axis = axes[row][col]
            binary = set(np.unique(part[column].dropna().astype(float))) <= {0.0, 1.0}
            for key, group in part.groupby(hue, sort=False):
                by_depth = group.groupby("depth")[column]
                stats = by_depth.agg(["mean"]).reset_index()
                stats["low"] = by_depth.quantile(0.25).to_numpy(float)
                stats["high"] = by_depth.quantile(0.75).to_numpy(float)
                mean, low, high = (stats[c].to_numpy(float) for c in ("mean", "low", "high"))
                if log:
                    mean, low, high = (np.clip(a, floor, None) for a in (mean, low, high))
                colour = _colour(str(key), colours)
                name = (labels or {}).get(str(key), str(key))
                axis.plot(stats["depth"], mean, marker="o", color=colour, label=name)
                if not binary:
                    axis.fill_between(stats["depth"], low, high, color=colour, alpha=0.15)
            _baseline(axis, baseline)
            if log:
                axis.set_yscale("log")
            _log2_depths(axis, depths)
            axis.set_ylabel(label)
            axis.set_xlabel("depth (hidden layers)")
            if value is not None:
                axis.set_title(str(value))
        axes[row][0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def layer_profiles(
    frame: pd.DataFrame,
    value: str,
    label: str,
    hue: str,
    columns: str,
    rows: str,
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    log: bool = False,
    floor: float = 1e-12,
) -> Figure | None:
    """``value`` per hidden layer (x: layer number), mean over seeds, one line per ``hue``, one
    panel per (``rows``, ``columns``) pair (e.g. depth x {initialisation, trained})."""
    needed = {"layer", value, hue, columns, rows}
    if frame.empty or not needed <= set(frame.columns) or frame[value].isna().all():
        return None
    apply_theme()
    row_values = list(dict.fromkeys(frame[rows]))
    col_values = list(dict.fromkeys(frame[columns]))
    figure, axes = plt.subplots(
        len(row_values),
        len(col_values),
        figsize=(FIGURE_WIDTH, 2.7 * len(row_values)),
        squeeze=False,
        sharey=log,
    )
    for i, row_value in enumerate(row_values):
        for j, col_value in enumerate(col_values):
            axis = axes[i][j]
            part = frame[(frame[rows] == row_value) & (frame[columns] == col_value)]
            for key, group in part.groupby(hue, sort=False):
                stats = group.groupby("layer")[value].mean().reset_index()
                y = stats[value].to_numpy(float)
                if log:
                    y = np.clip(y, floor, None)
                axis.plot(
                    stats["layer"],
                    y,
                    marker=".",
                    color=_colour(str(key), colours),
                    label=(labels or {}).get(str(key), str(key)),
                )
            if log:
                axis.set_yscale("log")
            axis.set_title(f"{row_value}, {col_value}", fontsize=9)
            axis.set_xlabel("hidden layer")
            axis.set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def curves(
    frame: pd.DataFrame,
    x: str,
    y: str,
    label: str,
    hue: str,
    facet: str,
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    baseline: tuple[float, str] | None = None,
) -> Figure | None:
    """``y`` against ``x`` (a training step), mean over seeds with a ± std band, one line per
    ``hue``, one panel per ``facet`` value (e.g. per hidden layer); ``baseline`` dashed."""
    needed = {x, y, hue, facet}
    if frame.empty or not needed <= set(frame.columns) or frame[y].isna().all():
        return None
    apply_theme()
    facets = list(dict.fromkeys(frame[facet]))
    figure, axes = plt.subplots(
        1, len(facets), figsize=(FIGURE_WIDTH, 3.4), squeeze=False, sharey=True
    )
    for axis, value in zip(axes[0], facets, strict=True):
        part = frame[frame[facet] == value]
        for key, group in part.groupby(hue, sort=False):
            stats = group.groupby(x)[y].agg(["mean", "std"]).reset_index()
            mean = stats["mean"].to_numpy(float)
            spread = np.nan_to_num(stats["std"].to_numpy(float))
            colour = _colour(str(key), colours)
            name = (labels or {}).get(str(key), str(key))
            axis.plot(stats[x], mean, color=colour, label=name)
            axis.fill_between(stats[x], mean - spread, mean + spread, color=colour, alpha=0.15)
        _baseline(axis, baseline)
        axis.set_title(str(value))
        axis.set_xlabel(x)
    axes[0][0].set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def grouped_bars(
    frame: pd.DataFrame,
    group: str,
    hue: str,
    value: str,
    label: str,
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    reference: Mapping[str, float] | None = None,
    reference_label: str = "published",
    baseline: tuple[float, str] | None = None,
) -> Figure | None:
    """Per-seed values as dots over a bar of their mean, grouped by ``group`` and coloured by
    ``hue``; ``reference`` (by group) draws a published value as a black diamond over its
    group. The value axis starts a little below the smallest value, not at 0."""
    if frame.empty or not {group, hue, value} <= set(frame.columns):
        return None
    apply_theme()
    groups = list(dict.fromkeys(frame[group]))
    hues = list(dict.fromkeys(frame[hue]))
    width = 0.8 / len(hues)
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 3.8))
    drawn = list(frame[value].astype(float))
    referenced = False
    for g, group_value in enumerate(groups):
        for h, hue_value in enumerate(hues):
            part = frame[(frame[group] == group_value) & (frame[hue] == hue_value)][value]
            if part.empty:
                continue
            position = g + (h - (len(hues) - 1) / 2) * width
            colour = _colour(str(hue_value), colours)
            name = (labels or {}).get(str(hue_value), str(hue_value))
            axis.bar(
                position,
                part.mean(),
                width * 0.9,
                color=colour,
                alpha=0.6,
                label=name if g == 0 else None,
            )
            axis.scatter(np.full(len(part), position), part, color="black", s=10, zorder=3)
        if reference and str(group_value) in reference:
            drawn.append(reference[str(group_value)])
            axis.scatter(
                g,
                reference[str(group_value)],
                marker="D",
                color="black",
                s=45,
                zorder=4,
                label=None if referenced else reference_label,
            )
            referenced = True
    if baseline is not None:
        drawn.append(baseline[0])
        _baseline(axis, baseline)
    low, high = min(drawn), max(drawn)
    axis.set_ylim(max(0.0, low - 0.1 * (high - low + 0.05)), high + 0.1 * (high - low + 0.05))
    axis.set_xticks(range(len(groups)))
    axis.set_xticklabels([str(g) for g in groups], fontsize=8)
    axis.set_ylabel(label)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def rank_scatter(
    frame: pd.DataFrame,
    x: str,
    y: str,
    xlabel: str,
    ylabel: str,
    hue: str,
    labels: Mapping[str, str] | None = None,
    title: str = "",
    floor: float = 1e-4,
) -> Figure | None:
    """Per-cell ``y`` against ``x`` (x on a log scale, values below ``floor`` drawn at it)."""
    if frame.empty or not {x, y, hue} <= set(frame.columns):
        return None
    apply_theme()
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 4.2))
    for key, group in frame.groupby(hue, sort=False):
        axis.scatter(
            np.clip(group[x].to_numpy(float), floor, None),
            group[y],
            color=family_colour(str(key)),
            label=(labels or {}).get(str(key), family_label(str(key))),
            alpha=0.7,
            s=22,
        )
    axis.set_xscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def function_images(
    target: np.ndarray | None, images: Mapping[str, np.ndarray], extent: tuple[float, float]
) -> Figure | None:
    """A 2-D task's target beside named models' outputs on its grid, in one row.

    ``image[i, j]``: the output at grid point (i, j), i along the first input coordinate (drawn
    horizontally), on the target's 0-to-1 scale (outputs beyond it drawn at its ends).
    """
    if target is None or not images:
        return None
    apply_theme()
    panels = [("target", target), *images.items()]
    # At most three panels a row, titles wrapped: six in one row of the page's width left each
    # panel an inch and ran the titles into each other.
    columns = min(len(panels), FUNCTION_COLUMNS)
    rows = math.ceil(len(panels) / columns)
    side = (FIGURE_WIDTH - 1.2) / columns
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(FIGURE_WIDTH, rows * (side + 0.7)),
        squeeze=False,
        layout="constrained",
    )
    drawn = [
        draw_function_image(axis, image, textwrap.fill(title, TITLE_CHARACTERS), extent)
        for axis, (title, image) in zip(axes.flat, panels, strict=False)
    ]
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_axis_off()
    function_colour_bar(figure, drawn[0], axes)
    return figure
