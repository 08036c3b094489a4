"""Errors a user can cause when building, sizing, saving or loading a model.

All derive from ``VariabilityError`` (a ValueError) and carry one readable sentence: what is
wrong and what to do instead.
"""

from __future__ import annotations

from pathlib import Path

from variability.errors import VariabilityError

__all__ = [
    "BudgetError",
    "CorruptModelFileError",
    "ModelFileError",
    "ModelFileNotFoundError",
    "NotAModelFileError",
    "PickledObjectsError",
    "SpecError",
]


class SpecError(VariabilityError):
    """A model spec (family, sizes, activation, init...) that cannot be built."""


class BudgetError(VariabilityError):
    """A parameter budget that a family cannot meet, at this depth, within the tolerance.

    Attributes: ``family``, ``depth``, ``budget``, ``nearest_budget`` (the feasible budget closest
    to the one asked for), ``width`` / ``count`` (the largest model within budget, or None if
    even the narrowest model exceeds it) and ``above_count`` (the count of the next width up,
    the narrowest model's when ``count`` is None).
    """

    def __init__(
        self,
        message: str,
        *,
        family: str,
        depth: int,
        budget: int,
        nearest_budget: int,
        width: int | None,
        count: int | None,
        above_count: int | None = None,
    ) -> None:
        super().__init__(message)
        self.family = family
        self.depth = depth
        self.budget = budget
        self.nearest_budget = nearest_budget
        self.width = width
        self.count = count
        self.above_count = above_count


class ModelFileError(VariabilityError):
    """A model file that cannot be loaded; ``path`` names it."""

    def __init__(self, message: str, path: str | Path) -> None:
        super().__init__(message)
        self.path = Path(path)


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The path does not exist (also a FileNotFoundError, for callers that catch that)."""


class NotAModelFileError(ModelFileError):
    """A readable file that is not a variability model file: another format, a bare state dict."""


class PickledObjectsError(NotAModelFileError):
    """A PyTorch file holding pickled Python objects (a whole module...): never unpickled here."""


class CorruptModelFileError(ModelFileError):
    """A variability model file that is truncated, damaged, or whose weights do not fit its spec."""
