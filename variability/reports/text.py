"""How figures read as text, the same in the terminal and in the HTML reports."""

from __future__ import annotations

import math

__all__ = ["baseline_name", "percent", "shape_text"]


def percent(share: float | None) -> str:
    """A share of a site's units (dead, constant) as a percentage: ``75.0%``; ``-`` where it is
    not defined."""
    if share is None or math.isnan(share):
        return "-"
    return f"{100 * share:.1f}%"


def shape_text(shape: object) -> str:
    """The tensor shape at a site, the batch first as torchinfo shows it: ``(N,4,6,6)``, one
    word, so that a table row splits into its columns at spaces."""
    if not isinstance(shape, tuple | list):
        return "-"
    return "(" + ",".join(["N", *map(str, shape)]) + ")"


def baseline_name(metric: str) -> str:
    """The best constant prediction a task's metric is compared with (``Task.baseline``)."""
    return "majority class" if metric == "accuracy" else "mean predictor"
