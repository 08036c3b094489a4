"""Parameter counts of the three families, and the equal-parameter width solver.

Counts (DEFINITIONS.md; L hidden layers of width w):

- FC:  ``(d_in+1) w + (L-1)(w^2 + w) + (w+1) d_out``
- LCW: ``(d_in+1) w + (L-1)(w (w-1) + w) + (w+1) d_out``: each constrained row has w-1 free entries
- Han: ``(d_in+1) w + 2 w (L-1) + (w+1) d_out``; with n dense hidden layers (layouts.py; layer 1
  is always one), ``(d_in+1) w + (n-1)(w^2 + w) + 2 w (L-n) + (w+1) d_out``

To compare families fairly, each gets the width whose count is nearest to the budget, on either
side (DEFINITIONS.md), and a budget a family cannot come within ``tolerance`` (5%) of is refused
with the nearest budget that would work, rather than silently comparing models of very different
sizes.
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
    *,
    at_most: bool = False,
) -> int:
    """The width whose parameter count is nearest to ``params``, on either side, within
    ``tolerance`` (DEFINITIONS.md; a tie goes to the narrower width).

    ``at_most``: the largest width whose count does not exceed ``params`` instead (what the
    reproductions that fix a budget from above use), still within ``tolerance`` of it.
    Raises BudgetError when no width comes within the tolerance; the message names the family,
    the depth, the budget, the counts on either side and the nearest budget that would work.
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
    narrowest = min_width(family, depth)
    below = _largest_width_within(family, params, depth, d_in, d_out, dense)
    above = narrowest if below is None else below + 1
    count_above = param_count(family, d_in, d_out, depth, above, dense)
    count_below = None if below is None else param_count(family, d_in, d_out, depth, below, dense)
    candidates: list[tuple[int, int]] = []
    if below is not None and count_below is not None:
        candidates.append((params - count_below, below))
    if not at_most:
        candidates.append((count_above - params, above))
    fits = [(gap, width) for gap, width in candidates if gap <= tolerance * params]
    if fits:
        return min(fits)[1]  # the nearest count; on a tie the narrower width (listed first)
    layout = "" if dense == DEFAULT_DENSE else f", dense layers {', '.join(map(str, dense))}"
    where = f"{family} at depth {depth} (d_in={d_in}, d_out={d_out}{layout})"
    rule = f"within {tolerance:.0%}" + (" from below" if at_most else "")
    if count_below is None:
        # Even the narrowest model is over budget (and, here, over it by more than the tolerance).
        nearest = count_above if at_most else math.ceil(count_above / (1.0 + tolerance))
        raise BudgetError(
            f"{where} cannot meet a budget of {params:,} parameters {rule}: its "
            f"narrowest model (width {narrowest}) has {count_above:,}. Nearest feasible budget: "
            f"{nearest:,}.",
            family=family,
            depth=depth,
            budget=params,
            nearest_budget=nearest,
            width=None,
            count=None,
            above_count=count_above,
        )
    # Width w serves every budget P with |count(w) - P| <= tolerance P: from count(w) / (1 + tol)
    # (from count(w) itself when at_most) up to count(w) / (1 - tol). P lies in the gap between
    # what the width below serves and what the width above does.
    top_of_below = math.floor(count_below / (1.0 - tolerance))
    bottom_of_above = count_above if at_most else math.ceil(count_above / (1.0 + tolerance))
    nearest = top_of_below if params - top_of_below <= bottom_of_above - params else bottom_of_above
    raise BudgetError(
        f"{where} cannot meet a budget of {params:,} parameters {rule}: width "
        f"{below} has {count_below:,} ({1 - count_below / params:.1%} under) and width {above} "
        f"has {count_above:,} ({count_above / params - 1:.1%} over). Nearest feasible budget: "
        f"{nearest:,} (width {below} serves budgets up to {top_of_below:,}, width {above} "
        f"budgets from {bottom_of_above:,}).",
        family=family,
        depth=depth,
        budget=params,
        nearest_budget=nearest,
        width=below,
        count=count_below,
        above_count=count_above,
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
