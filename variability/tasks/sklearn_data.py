"""Real data that ships inside scikit-learn (no download), and the synthetic Friedman #1.

Every task here: 20% of the rows, drawn from the seed, are the test set; a quarter of the rest
(``val_fraction`` = 0.25 of the non-test rows, so 20% of all) the validation set; the remaining
60% the training set. Classification splits are stratified. Inputs are standardised with the
training split's mean and standard deviation; so are regression targets (R^2, the regression
metric, reads the same either way, and ``Task.to_original_units`` undoes it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from variability.tasks.splits import check_fraction, random_split, standardise, stratified_split
from variability.tasks.task import Task, TaskError

__all__ = ["load_breast_cancer", "load_diabetes", "load_digits", "load_friedman1"]

TEST_FRACTION = 0.2
VAL_FRACTION = 0.25
FRIEDMAN_SAMPLES = 2000
FRIEDMAN_NOISE = 1.0
FRIEDMAN_DATA_SEED = 0


def _split_indices(
    targets: np.ndarray, classification: bool, seed: int, test_fraction: float, val_fraction: float
) -> dict[str, np.ndarray]:
    test_fraction = check_fraction("test_fraction", test_fraction)
    val_fraction = check_fraction("val_fraction", val_fraction)
    if classification:
        test, rest = stratified_split(targets, test_fraction, seed)
        val_of_rest, train_of_rest = stratified_split(targets[rest], val_fraction, seed + 1)
    else:
        test, rest = random_split(len(targets), test_fraction, seed)
        val_of_rest, train_of_rest = random_split(len(rest), val_fraction, seed + 1)
    return {"train": rest[train_of_rest], "val": rest[val_of_rest], "test": test}


def _make_task(
    name: str,
    features: np.ndarray,
    targets: np.ndarray,
    classification: bool,
    seed: int,
    test_fraction: float,
    val_fraction: float,
    description: str,
    options: dict[str, object] | None = None,
) -> Task:
    split = _split_indices(targets, classification, seed, test_fraction, val_fraction)
    mean, std, (x_train, x_val, x_test) = standardise(
        *(features[split[s]] for s in ("train", "val", "test"))
    )

    def inputs(array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, dtype=torch.float32)

    common = {
        "name": name,
        "seed": seed,
        "d_in": features.shape[1],
        "x_train": inputs(x_train),
        "x_val": inputs(x_val),
        "x_test": inputs(x_test),
        "indices": {s: torch.as_tensor(split[s]) for s in ("train", "val", "test")},
        "feature_mean": inputs(mean),
        "feature_std": inputs(std),
        "description": description,
        "options": {
            "test_fraction": test_fraction,
            "val_fraction": val_fraction,
            **(options or {}),
        },
    }
    if classification:
        labels = {
            s: torch.tensor(targets[split[s]], dtype=torch.int64) for s in ("train", "val", "test")
        }
        classes = int(targets.max()) + 1
        return Task(
            kind="classification",
            loss="cross_entropy",
            metric="accuracy",
            d_out=classes,
            n_classes=classes,
            y_train=labels["train"],
            y_val=labels["val"],
            y_test=labels["test"],
            **common,
        )
    column = targets.reshape(-1, 1).astype(np.float64)
    t_mean, t_std, (y_train, y_val, y_test) = standardise(
        *(column[split[s]] for s in ("train", "val", "test"))
    )
    return Task(
        kind="regression",
        loss="mse",
        metric="r2",
        d_out=1,
        y_train=inputs(y_train),
        y_val=inputs(y_val),
        y_test=inputs(y_test),
        target_mean=inputs(t_mean),
        target_std=inputs(t_std),
        **common,
    )


def load_digits(
    seed: int = 0, test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION
) -> Task:
    """Handwritten digits: 1,797 8 x 8 images (64 pixel features, 0..16), 10 classes."""
    from sklearn import datasets  # imported on use: it takes a second

    data = datasets.load_digits()
    return _make_task(
        "digits", data.data, data.target, True, seed, test_fraction, val_fraction,
        "scikit-learn digits: 1,797 8x8 images, 64 features, 10 classes",
    )  # fmt: skip


def load_breast_cancer(
    seed: int = 0, test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION
) -> Task:
    """Wisconsin breast cancer: 569 rows, 30 features, 2 classes (0 malignant, 1 benign)."""
    from sklearn import datasets  # imported on use: it takes a second

    data = datasets.load_breast_cancer()
    return _make_task(
        "breast_cancer", data.data, data.target, True, seed, test_fraction, val_fraction,
        "scikit-learn breast cancer (Wisconsin): 569 rows, 30 features, 2 classes",
    )  # fmt: skip


def load_diabetes(
    seed: int = 0, test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION
) -> Task:
    """Diabetes progression: 442 rows, 10 features (raw, unscaled), a regression target."""
    from sklearn import datasets  # imported on use: it takes a second

    data = datasets.load_diabetes(scaled=False)
    return _make_task(
        "diabetes", data.data, data.target, False, seed, test_fraction, val_fraction,
        "scikit-learn diabetes: 442 rows, 10 features, disease progression after one year",
    )  # fmt: skip


def load_friedman1(
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
    n_samples: int = FRIEDMAN_SAMPLES,
    noise: float = FRIEDMAN_NOISE,
) -> Task:
    """Friedman #1: ``10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + noise``, x ~ U[0, 1]^10.

    The data set itself is fixed (``make_friedman1(n_samples, 10 features, noise,
    random_state=0)``: 2,000 rows, noise std 1, five of the ten features irrelevant); ``seed``
    draws the split, as for the other tasks.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 10:
        raise TaskError(f"n_samples must be an integer >= 10, got {n_samples!r}")
    if not isinstance(noise, (int, float)) or noise < 0:
        raise TaskError(f"noise must be a number >= 0, got {noise!r}")
    from sklearn import datasets  # imported on use: it takes a second

    features, targets = datasets.make_friedman1(
        n_samples=n_samples, n_features=10, noise=float(noise), random_state=FRIEDMAN_DATA_SEED
    )
    return _make_task(
        "friedman1", features, targets, False, seed, test_fraction, val_fraction,
        f"scikit-learn make_friedman1: {n_samples} rows, 10 features (5 relevant), noise {noise}",
        {"n_samples": n_samples, "noise": float(noise)},
    )  # fmt: skip


LOADERS: dict[str, Callable[..., Task]] = {
    "digits": load_digits,
    "diabetes": load_diabetes,
    "breast_cancer": load_breast_cancer,
    "friedman1": load_friedman1,
}
