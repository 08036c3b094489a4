"""The plan of a comparison: every cell (family x depth x init x seed), sized at the budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from variability.arch import BudgetError, build_model, count_params, solve_width
from variability.experiments.comparison.settings import CompareError, CompareSettings


@dataclass(frozen=True)
class Cell:
    """One model of the comparison: a family at a depth, sized to the budget, with a seed, and
    how its weights start (``init``: "default", the family's own, or a remedy method)."""

    family: str
    depth: int
    seed: int
    width: int
    params: int
    init: str = "default"

    @property
    def name(self) -> str:
        """``fc-d6-s0``; a remedied model's name ends with its method (``fc-d6-s0-lsuv``), so a
        comparison of the default init alone keeps the names it always had."""
        suffix = "" if self.init == "default" else f"-{self.init}"
        return f"{self.family}-d{self.depth}-s{self.seed}{suffix}"


def plan_cells(settings: CompareSettings, d_in: int, d_out: int) -> list[Cell]:
    """Every cell of the comparison, sized at the budget, in plan order (depth by depth, shallow
    first; within a family, init by init, then seed by seed); sizes a family cannot meet are all
    refused at once, before anything runs.

    DEFINITIONS.md: each family takes the width whose count is nearest to the budget, on either
    side, and a family that cannot come within the tolerance of it is refused. The refusal lists
    every such (family, depth) with the nearest budget that would fit, instead of failing on the
    first.
    """
    cells: list[Cell] = []
    refused: list[BudgetError] = []
    for depth in settings.depths:
        for family in settings.families:
            try:
                width = solve_width(
                    family,
                    settings.params,
                    depth,
                    d_in,
                    d_out,
                    tolerance=settings.tolerance,
                    dense_layers=settings.dense_layers(family, depth),
                )
            except BudgetError as error:
                refused.append(error)
                continue
            dense = settings.dense_layers(family, depth) if family == "han" else None
            model = build_model(family, d_in, d_out, depth, width=width, seed=0, dense_layers=dense)
            count = count_params(model)
            for init in settings.inits:
                for seed in range(settings.seeds):
                    cells.append(Cell(family, depth, seed, width, count, init))
    if refused:
        raise CompareError(_refusal(refused, settings))
    return cells


def _refusal(refused: list[BudgetError], settings: CompareSettings) -> str:
    lines = []
    needed = 0.0
    budget = settings.params
    for error in refused:
        above = error.above_count
        gaps = [g for g in (error.count, above) if g is not None]
        needed = max(needed, min(abs(g - budget) for g in gaps) / budget)
        over = "" if above is None else f"{above:,} ({100 * (above / budget - 1):.1f}% over)"
        if error.count is not None:
            lines.append(
                f"{error.family} at depth {error.depth}: the nearest models have "
                f"{error.count:,} ({100 * (1 - error.count / budget):.1f}% under) and {over}; "
                f"nearest feasible budget {error.nearest_budget:,}"
            )
        else:
            lines.append(
                f"{error.family} at depth {error.depth}: even its narrowest model has {over}; "
                f"nearest feasible budget {error.nearest_budget:,}"
            )
    hint = (
        f" --tolerance {math.ceil(needed * 100 + 0.5) / 100:g} would admit the nearest ones,"
        if needed
        else ""
    )
    return (
        f"cannot size every model within {100 * settings.tolerance:g}% of {settings.params:,} "
        f"parameters: " + "; ".join(lines) + f".{hint} or choose other --params or --depths."
    )


__all__ = ["Cell", "plan_cells"]
