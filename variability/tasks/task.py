"""The ``Task``: a problem as tensors with fixed splits, plus how to train and score on it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from variability.errors import VariabilityError
from variability.probes.evaluation import predict

__all__ = ["LOSSES", "METRICS", "Grid", "Task", "TaskError", "accuracy", "r2_score"]

Kind = Literal["classification", "regression"]
SPLITS = ("train", "val", "test")


class TaskError(VariabilityError):
    """An unknown task name or an option a task cannot take."""


def accuracy(predictions: Tensor, targets: Tensor) -> float:
    """Fraction of correct predictions (NaN when there are none).

    Float 0/1 targets, trained with MSE (the checkerboard), in one column or several identical
    ones (the Han paper's two): the prediction is class 1 where the mean of the output columns
    exceeds 0.5. Class-index targets with several output columns: the argmax.
    """
    predictions = predictions.detach()
    targets = targets.detach()
    if len(predictions) == 0:
        return math.nan
    if predictions.dim() == 1 or predictions.shape[-1] == 1 or targets.is_floating_point():
        predicted = predictions.reshape(len(predictions), -1).mean(dim=1) > 0.5
        truth = targets.reshape(len(targets), -1).mean(dim=1) > 0.5
    else:
        predicted = predictions.argmax(dim=-1)
        truth = targets.detach().reshape(-1)
    if predicted.shape != truth.shape:
        raise ValueError(f"{predicted.shape[0]} predictions for {truth.shape[0]} targets")
    return (predicted == truth).double().mean().item()


def r2_score(predictions: Tensor, targets: Tensor) -> float:
    """Coefficient of determination ``1 - sum (y - f)^2 / sum (y - mean y)^2`` over all outputs.

    Unchanged by standardising targets and predictions alike, so it reads the same in
    standardised and in original units. 1 is perfect, 0 is as good as predicting the mean.
    """
    f = predictions.detach().double().reshape(targets.shape)
    y = targets.detach().double()
    residual = (y - f).pow(2).sum()
    total = (y - y.mean(dim=0)).pow(2).sum()
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return (1.0 - residual / total).item()


LOSSES: dict[str, type[nn.Module]] = {"mse": nn.MSELoss, "cross_entropy": nn.CrossEntropyLoss}
METRICS = {"accuracy": accuracy, "r2": r2_score}


@dataclass(frozen=True, eq=False)
class Grid:
    """A 2-D task's whole input grid, for drawing the learned function beside the target.

    ``x`` (G*G, 2) and ``y`` (G*G,) are in grid order: point ``k = i * G + j`` has grid index i
    along the first input coordinate and j along the second. ``x`` is in the model's input space.
    """

    x: Tensor
    y: Tensor
    shape: tuple[int, int]
    low: float
    high: float

    def image(self, values: Tensor) -> Tensor:
        """Values in grid order (one per point) as a (G, G) array indexed ``[i, j]``."""
        return values.detach().reshape(self.shape)


@dataclass(frozen=True, eq=False)
class Task:
    """A problem with fixed train / validation / test splits, as tensors.

    Inputs are float32 ``(N, d_in)``. Targets: class indices (int64, ``(N,)``) for cross-entropy
    classification; float32 ``(N, d_out)`` for regression and for MSE-trained classification
    (the checkerboard's 0/1 target). ``indices`` gives each split's rows in the full data set.
    """

    name: str
    kind: Kind
    loss: str
    metric: str
    d_in: int
    d_out: int
    seed: int
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    indices: dict[str, Tensor]
    description: str = ""
    n_classes: int | None = None
    feature_mean: Tensor | None = None
    feature_std: Tensor | None = None
    target_mean: Tensor | None = None
    target_std: Tensor | None = None
    grid: Grid | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def has_validation(self) -> bool:
        """Whether there is a validation split to choose checkpoints on (the Han paper's
        checkerboard split has none)."""
        return len(self.x_val) > 0

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of "train", "val" or "test"."""
        if name not in SPLITS:
            raise TaskError(f"unknown split {name!r}; splits: {', '.join(SPLITS)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def loss_fn(self) -> nn.Module:
        """A fresh loss module (``nn.MSELoss`` or ``nn.CrossEntropyLoss``), mean reduction."""
        return LOSSES[self.loss]()

    def score(self, predictions: Tensor, targets: Tensor) -> float:
        """The task's metric (accuracy or R^2) of model outputs against targets."""
        return METRICS[self.metric](predictions, targets)

    def evaluate(self, model: nn.Module, split: str = "test", batch_size: int = 8192) -> float:
        """The metric of ``model`` on one split, in eval mode without gradients (mode restored)."""
        x, y = self.split(split)
        return self.score(predict(model, x, batch_size=batch_size).cpu(), y)

    def baseline(self, split: str = "test") -> float:
        """The metric of the best constant prediction, fitted on the training split and scored
        on ``split``: the majority class of a classification, the training mean of a regression
        (R^2 near 0). A network collapsed to a constant scores about this, so only a score above
        it shows that a model learned something."""
        _, y = self.split(split)
        if self.loss == "cross_entropy":
            classes = self.n_classes or int(self.y_train.max()) + 1
            counts = torch.bincount(self.y_train.reshape(-1).cpu(), minlength=classes)
            constant = nn.functional.one_hot(counts.argmax(), classes).double()
        else:
            constant = self.y_train.double().mean(dim=0).cpu()
        return self.score(constant.expand(len(y), *constant.shape), y.cpu())

    def to_original_units(self, targets: Tensor) -> Tensor:
        """Undo the target standardisation of a regression task (identity otherwise)."""
        if self.target_mean is None or self.target_std is None:
            return targets
        return targets * self.target_std.to(targets.device) + self.target_mean.to(targets.device)

    def to(self, device: torch.device | str) -> Task:
        """The same task with every tensor on ``device``."""

        def move(value: Any) -> Any:
            if isinstance(value, Tensor):
                return value.to(device)
            if isinstance(value, Grid):
                return dataclasses.replace(value, x=value.x.to(device), y=value.y.to(device))
            if isinstance(value, dict):
                return {k: move(v) for k, v in value.items()}
            return value

        return dataclasses.replace(
            self, **{f.name: move(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )

    def sizes(self) -> dict[str, int]:
        return {name: len(self.split(name)[0]) for name in SPLITS}

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable description (for run.json and reports)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "loss": self.loss,
            "metric": self.metric,
            "d_in": self.d_in,
            "d_out": self.d_out,
            "n_classes": self.n_classes,
            "seed": self.seed,
            "sizes": self.sizes(),
            "baseline": {split: self.baseline(split) for split in ("val", "test")},
            "options": dict(self.options),
            "description": self.description,
        }

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {v}" for k, v in self.sizes().items())
        return (
            f"Task({self.name!r}, {self.kind}, d_in={self.d_in}, d_out={self.d_out}, "
            f"loss={self.loss}, metric={self.metric}, seed={self.seed}: {sizes})"
        )
