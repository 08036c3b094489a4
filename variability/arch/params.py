"""Parameter counts of the three families, and the equal-parameter width solver.

Counts (DEFINITIONS.md; L hidden layers of width w):

- FC:  ``(d_in+1) w + (L-1)(w^2 + w) + (w+1) d_out``
- LCW: ``(d_in+1) w + (L-1)(w (w-1) + w) + (w+1) d_out``: each constrained row has w-1 free entries
- Han: ``(d_in+1) w + 2 w (L-1) + (w+1) d_out``; with n dense hidden layers (layouts.py; layer 1
  is always one), ``(d_in+1) w + (n-1)(w^2 + w) + 2 w (L-n) + (w+1) d_out``

To compare families fairly, each gets the largest width whose count does not exceed the budget,
and a budget a family cannot come within ``tolerance`` (5%) of is refused with the nearest budget
that would work, rather than silently comparing models of very different sizes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

from torch import nn

from variability.arch.errors import BudgetError, SpecError
from variability.arch.layouts import DEFAULT_DENSE, Layout, dense_layers_for

__all__ = [
    "DEFAULT_TOLERANCE",
    "FAMILIES",
    "count_params",
    "min_width",
    "param_count",
    "solve_width",
    "solve_widths",
]

FAMILIES: tuple[str, ...] = ("fc", "lcw", "han")
DEFAULT_TOLERANCE = 0.05


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise SpecError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return family


def check_size(name: str, value: object, minimum: int = 1) -> int:
    """``int(value)`` if it is an integer (Python or NumPy; not a bool or float) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def min_width(family: str, depth: int) -> int:
    """The narrowest buildable width: LCW rows need at least 2 inputs to sum to zero."""
    return 2 if family == "lcw" and depth >= 2 else 1


def param_count(
    family: str,
    d_in: int,
    d_out: int,
    depth: int,
    width: int,
    dense_layers: Sequence[int] = DEFAULT_DENSE,
) -> int:
    """The number of trainable parameters of a family's model, by the formulas above.

    ``dense_layers``: a Han network's dense hidden layers (``layouts.dense_layers_for``).
    """
    check_family(family)
    d_in, d_out = check_size("d_in", d_in), check_size("d_out", d_out)
    depth, width = check_size("depth", depth), check_size("width", width)
    outer = (d_in + 1) * width + (width + 1) * d_out
    if family == "fc":
        return outer + (depth - 1) * (width * width + width)
    if family == "lcw":
        return outer + (depth - 1) * width * width
    dense = len(set(dense_layers))
    return outer + (dense - 1) * (width * width + width) + 2 * width * (depth - dense)


def count_params(model: nn.Module) -> int:
    """Trainable parameters of any model (shared tensors counted once; buffers such as LCW's
    fixed basis are not parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _largest_width_within(
    family: str, budget: int, depth: int, d_in: int, d_out: int, dense: Sequence[int]
) -> int | None:
    low = min_width(family, depth)
    if param_count(family, d_in, d_out, depth, low, dense) > budget:
        return None
    high = low
    while param_count(family, d_in, d_out, depth, high * 2, dense) <= budget:
        high *= 2
    high *= 2  # count(high) > budget >= count(low)
    while high - low > 1:
        middle = (low + high) // 2
        if param_count(family, d_in, d_out, depth, middle, dense) <= budget:
            low = middle
        else:
            high = middle
    return low


def solve_width(
    family: str,
    params: int,
    depth: int,
    d_in: int,
    d_out: int,
    tolerance: float = DEFAULT_TOLERANCE,
    dense_layers: Sequence[int] = DEFAULT_DENSE,
) -> int:
    """The largest width whose parameter count is at most ``params``.

    Raises BudgetError if even the narrowest model is over budget, or if the largest model within
    budget has fewer than ``(1 - tolerance) * params`` parameters. The message names the family,
    the depth, the budget and the nearest budget that would be accepted.
    """
    check_family(family)
    params = check_size("params", params)
    depth, d_in, d_out = (
        check_size("depth", depth),
        check_size("d_in", d_in),
        check_size("d_out", d_out),
    )
    if not 0.0 <= tolerance < 1.0:
        raise SpecError(f"tolerance must be in [0, 1), got {tolerance!r}")
    dense = tuple(dense_layers)
    width = _largest_width_within(family, params, depth, d_in, d_out, dense)
    layout = "" if dense == DEFAULT_DENSE else f", dense layers {', '.join(map(str, dense))}"
    where = f"{family} at depth {depth} (d_in={d_in}, d_out={d_out}{layout})"
    if width is None:
        smallest = param_count(family, d_in, d_out, depth, min_width(family, depth), dense)
        raise BudgetError(
            f"{where} cannot fit a budget of {params:,} parameters: its narrowest model "
            f"(width {min_width(family, depth)}) has {smallest:,}. "
            f"Nearest feasible budget: {smallest:,}.",
            family=family,
            depth=depth,
            budget=params,
            nearest_budget=smallest,
            width=None,
            count=None,
        )
    count = param_count(family, d_in, d_out, depth, width, dense)
    if count >= (1.0 - tolerance) * params:
        return width
    # Budget P is feasible for width w iff count(w) <= P <= count(w) / (1 - tolerance).
    below = math.floor(count / (1.0 - tolerance))
    above = param_count(family, d_in, d_out, depth, width + 1, dense)
    nearest = below if params - below <= above - params else above
    raise BudgetError(
        f"{where} cannot meet a budget of {params:,} parameters within {tolerance:.0%}: the "
        f"largest model within budget (width {width}) has {count:,} "
        f"({1 - count / params:.1%} under), and width {width + 1} has {above:,}. "
        f"Nearest feasible budget: {nearest:,} (any budget from {count:,} to {below:,} gives "
        f"width {width}; {above:,} gives width {width + 1}).",
        family=family,
        depth=depth,
        budget=params,
        nearest_budget=nearest,
        width=width,
        count=count,
    )


def solve_widths(
    params: int,
    depth: int,
    d_in: int,
    d_out: int,
    families: Iterable[str] = FAMILIES,
    tolerance: float = DEFAULT_TOLERANCE,
    han_layout: Layout = None,
) -> dict[str, int]:
    """``{family: width}`` at one budget and depth; the first family that cannot meet it raises.

    ``han_layout``: the Han networks' layout (``layouts.py``), by name or as their dense layers.
    """
    return {
        f: solve_width(
            f,
            params,
            depth,
            d_in,
            d_out,
            tolerance,
            dense_layers_for(f, depth, han_layout if f == "han" else None),
        )
        for f in families
    }
