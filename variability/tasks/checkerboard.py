"""The checkerboard: the styled 2-D problem of the variability and Han papers.

An 81 x 81 grid over [-1, 1]^2 (coordinate ``-1 + i / 40`` for grid index i = 0..80). Label 1 iff
``4 <= i <= 75``, ``4 <= j <= 75`` and ``floor((i - 4) / 6) + floor((j - 4) / 6)`` is odd: a 12 x 12
board of 6 x 6-pixel squares whose first square is 0, inside a zero border of 4 pixels on the low
side and 5 on the high side. 2,592 of the 6,561 points are ones.
"""

from __future__ import annotations

import numpy as np
import torch

from variability.tasks.splits import check_fraction, random_split
from variability.tasks.task import Grid, Task, TaskError

__all__ = [
    "BORDER_HIGH",
    "BORDER_LOW",
    "GRID_SIZE",
    "SQUARE",
    "checkerboard_grid",
    "checkerboard_labels",
    "load_checkerboard",
]

GRID_SIZE = 81
SQUARE = 6
BORDER_LOW = 4
BORDER_HIGH = 5  # 4 + 12 * 6 = 76 = 81 - 5
TRAIN_FRACTION = 0.25
VAL_FRACTION = 0.2


def checkerboard_labels(size: int = GRID_SIZE) -> np.ndarray:
    """The (size, size) 0/1 label image, indexed ``[i, j]``; the default is DEFINITIONS.md's."""
    if size != GRID_SIZE:
        raise TaskError(f"the checkerboard is defined on an {GRID_SIZE} x {GRID_SIZE} grid")
    i = np.arange(size)[:, None]
    j = np.arange(size)[None, :]
    last = size - 1 - BORDER_HIGH
    inside = (i >= BORDER_LOW) & (i <= last) & (j >= BORDER_LOW) & (j <= last)
    odd = ((i - BORDER_LOW) // SQUARE + (j - BORDER_LOW) // SQUARE) % 2 == 1
    return (inside & odd).astype(np.int64)


def checkerboard_grid(size: int = GRID_SIZE) -> np.ndarray:
    """Grid points ``(size * size, 2)`` in grid order: row ``k = i * size + j`` is
    ``(-1 + 2 i / (size - 1), -1 + 2 j / (size - 1))``."""
    coordinate = -1.0 + 2.0 * np.arange(size) / (size - 1)
    i, j = np.meshgrid(coordinate, coordinate, indexing="ij")
    return np.stack([i.reshape(-1), j.reshape(-1)], axis=1)


def load_checkerboard(
    seed: int = 0,
    train_fraction: float = TRAIN_FRACTION,
    val_fraction: float = VAL_FRACTION,
    outputs: int = 1,
) -> Task:
    """The checkerboard with a seeded split.

    ``train_fraction`` (25%) of the grid points, drawn at random, form the training part and the
    rest (75%) the test set, as in the papers. ``val_fraction`` (20%) of the training part, drawn
    at random too, is held out as a validation set for model selection, so the default sizes are
    1,312 train, 328 validation and 4,921 test; ``val_fraction=0`` keeps the whole training part
    for training and has no validation set (the Han paper's split: 1,640 train, 4,921 test).
    Inputs stay on the grid's [-1, 1] coordinates (no standardisation: the papers' setting and
    the V3 box). Target: float 0/1 for MSE, ``outputs`` identical columns (the Han paper trains
    two); accuracy thresholds the mean of the output columns at 0.5.
    """
    train_fraction = check_fraction("train_fraction", train_fraction)
    val_fraction = check_fraction("val_fraction", val_fraction, allow_zero=True)
    if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
        raise TaskError(f"outputs must be an integer >= 1, got {outputs!r}")
    x = torch.tensor(checkerboard_grid(), dtype=torch.float32)
    labels = torch.tensor(checkerboard_labels().reshape(-1), dtype=torch.float32)
    training_part, test = random_split(len(x), train_fraction, seed)
    if val_fraction == 0:
        val, train = training_part[:0], training_part
    else:
        chosen, fit = random_split(len(training_part), val_fraction, seed + 1)
        val, train = training_part[chosen], training_part[fit]
    indices = {
        name: torch.as_tensor(part)
        for name, part in (("train", train), ("val", val), ("test", test))
    }

    def rows(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[part], labels[part].unsqueeze(1).expand(-1, outputs).contiguous()

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        rows(indices[s]) for s in ("train", "val", "test")
    )
    return Task(
        name="checkerboard",
        kind="classification",
        loss="mse",
        metric="accuracy",
        d_in=2,
        d_out=outputs,
        n_classes=2,
        seed=seed,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        indices=indices,
        grid=Grid(x=x, y=labels, shape=(GRID_SIZE, GRID_SIZE), low=-1.0, high=1.0),
        options={
            "train_fraction": train_fraction,
            "val_fraction": val_fraction,
            **({"outputs": outputs} if outputs != 1 else {}),
        },
        description="12 x 12 checkerboard on an 81 x 81 grid over [-1, 1]^2 (Zhang & Yu)",
    )
