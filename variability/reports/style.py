"""One look for every figure: a colour-blind-safe palette, the same colour per family everywhere."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # reports never need a display; set before seaborn imports pyplot

from collections.abc import Iterable

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from numpy.typing import ArrayLike

PALETTE = sns.color_palette("colorblind")
FIGURE_WIDTH = 10.0
"""Inches: every figure of every report is this wide, and drawn at one scale on the page
(page.py), so one font size reads the same in all of them."""

FAMILY_COLOURS: dict[str, tuple[float, float, float]] = {
    "fc": PALETTE[0],
    "lcw": PALETTE[1],
    "han": PALETTE[2],
}
FAMILY_LABELS: dict[str, str] = {"fc": "FC", "lcw": "LCW", "han": "Han"}
STATUS_COLOURS: dict[str, str] = {
    "healthy": "#1b7837",
    "collapsing": "#e08214",
    "collapsed": "#b2182b",
    "dead units": "#8c510a",
}


def family_colour(family: str) -> tuple[float, float, float]:
    """A family's colour; families beyond the three known ones take the next palette colours."""
    if family not in FAMILY_COLOURS:
        FAMILY_COLOURS[family] = PALETTE[len(FAMILY_COLOURS) % len(PALETTE)]
    return FAMILY_COLOURS[family]


def family_label(family: str) -> str:
    return FAMILY_LABELS.get(family, family)


DEFAULT_INIT = "default"
"""A comparison cell's init when it is the family's own (records made before inits lack it)."""
INIT_LINESTYLES = ("-", "--", ":", "-.")
"""Where a comparison's inits differ, each init's line style, in the order they come; the
family keeps its colour."""


def shows_init(inits: Iterable[object]) -> bool:
    """Whether figures, tables and sentences name the init: when any is not the default, so that
    a comparison of the default init alone reads as it always did."""
    return any(init != DEFAULT_INIT for init in inits)


def series_label(family: str, init: str, named: bool) -> str:
    """``FC``, or where inits are ``named``, ``FC · lsuv`` (and ``FC · default``)."""
    return f"{family_label(family)} · {init}" if named else family_label(family)


def note_floor(axis: Axes, values: ArrayLike, floor: float) -> None:
    """On a log axis where values below ``floor`` (0 included) are drawn at it, say so in a corner
    (only when there are such values)."""
    if (np.asarray(values, dtype=float) < floor).any():
        axis.text(
            0.99,
            0.97,
            f"V below {floor:g} (or 0) drawn at {floor:g}",
            transform=axis.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )


def apply_theme() -> None:
    """Seaborn's white grid, readable font sizes; called by every figure function."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=0.95)
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold"})
