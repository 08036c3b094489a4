"""Seeded splits and standardisation with training statistics.

Splits are index arrays drawn from ``numpy.random.default_rng(seed)`` (or scikit-learn's
stratified splitter seeded the same way), sorted within each split so a split's row order does
not depend on the draw. Statistics for standardising come from the training split alone, so
nothing about the validation or test rows leaks into the inputs the model sees.
"""

from __future__ import annotations

import math

import numpy as np

from variability.tasks.task import TaskError

__all__ = ["check_fraction", "random_split", "standardise", "stratified_split"]


def check_fraction(name: str, value: float, allow_zero: bool = False) -> float:
    """A fraction strictly between 0 and 1 (or exactly 0 where an empty part is allowed)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (0.0 < value < 1.0 or (allow_zero and value == 0))
    ):
        bounds = "in [0, 1)" if allow_zero else "strictly between 0 and 1"
        raise TaskError(f"{name} must be a number {bounds}, got {value!r}")
    return float(value)


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(chosen, rest)``: ``floor(fraction * n)`` rows chosen uniformly at random (the
    rounding scikit-learn's splitter uses for the part it is given the size of)."""
    order = np.random.default_rng(seed).permutation(n)
    count = math.floor(fraction * n + 1e-9)
    if not 0 < count < n:
        raise TaskError(f"a fraction of {fraction} of {n} rows leaves an empty split")
    return np.sort(order[:count]), np.sort(order[count:])


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``random_split``, keeping each class's share in both parts (scikit-learn's splitter)."""
    from sklearn.model_selection import train_test_split  # here: importing sklearn takes a second

    index = np.arange(len(labels))
    chosen, rest = train_test_split(
        index, train_size=fraction, random_state=seed, shuffle=True, stratify=labels
    )
    return np.sort(chosen), np.sort(rest)


def standardise(
    train: np.ndarray, *others: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``(mean, std, [train, *others] standardised)`` with the training mean and std (ddof 0).

    A column that is constant in the training split (std 0, e.g. a blank pixel in digits) is
    only centred: its std is taken as 1.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std, [(part - mean) / std for part in (train, *others)]
