"""Training with a learning curve on every split, and choosing runs and checkpoints afterwards.

The published checkerboard results chose the checkpoint and the learning rate by test accuracy.
To show what that choice is worth, every run here scores its model on the train, validation and
test splits at each evaluation (one training loop, ``runs.loop``, as the trainer's), and the
selection rules are applied to the recorded curves afterwards:

- ``choose_published`` (the paper's rule): per seed, the evaluation with the best test metric
  over every checkpoint of every learning rate.
- ``choose_on_validation`` (honest): the learning rate whose runs have the best mean, over
  seeds, of their best validation metric; per seed, that run's best-validation evaluation; the
  test metric is read there.

Ties go to the earliest evaluation and the first learning rate listed. A run whose loss stops
being finite is stopped and marked ``diverged``; its curve ends there.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from variability.arch import HanLayer
from variability.probes.evaluation import predict
from variability.runs.config import TrainConfig
from variability.runs.loop import make_optimizer, training_steps
from variability.tasks import Task

SPLITS = ("train", "val", "test")


@dataclass
class Curve:
    """Metrics of one run at every evaluation (step 0 is before training); ``loss`` is the mean
    training loss since the previous evaluation; ``diverged`` the step the loss stopped being
    finite (None if it never did)."""

    steps: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    diverged: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: list(getattr(self, k)) for k in ("steps", *SPLITS, "loss")}
        data["diverged"] = self.diverged
        return data


def _scores(model: nn.Module, task: Task) -> list[float]:
    """The task's metric on each split, in eval mode without gradients (mode restored); eager,
    so a compiled training forward is not compiled again for each split's size."""
    values = []
    for split in SPLITS:
        x, y = task.split(split)
        values.append(task.score(predict(model, x, device=x.device), y) if len(x) else math.nan)
    return values


def compiled(model: nn.Module, example: Tensor) -> Callable[[Tensor], Tensor]:
    """``torch.compile(model)`` if it compiles and runs a forward and backward pass here, else
    the model itself. Compiling fuses a small deep network's many tiny operations (a HanNet 20 x
    30 step is about 4 times faster); where no compiler works, eager mode gives the same model."""
    for module in model.modules():
        if isinstance(module, HanLayer):
            module.fused = False  # the Han layer's plain ops, which the compiler can fuse
    # Each model compiles afresh. Dynamo keeps the graphs of every model compiled in this process
    # (a worker trains many) under one cache entry per code object, and after 8 of them it stops
    # compiling and runs the rest eagerly, with only a log line to say so.
    torch.compiler.reset()
    try:
        forward = torch.compile(model)
        forward(example).sum().backward()
        model.zero_grad(set_to_none=True)
        return forward
    except Exception:
        model.zero_grad(set_to_none=True)
        return model


def train_with_curve(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    *,
    device: torch.device,
    keep: Sequence[str] = (),
    compile: bool = False,
) -> tuple[Curve, dict[str, dict[str, Tensor]], float]:
    """Train by ``config`` (optimizer, schedule, batches) and score every split at step 0, every
    ``config.eval_interval`` steps and at the end.

    ``keep``: for each split named, a copy of the weights at that split's best evaluation (for
    drawing the chosen model). Returns the curve, the kept weights and the seconds taken.
    """
    started = time.perf_counter()
    model.to(device)
    task = task.to(device)
    loss_fn = task.loss_fn()
    optimizer = make_optimizer(model, config)
    forward = compiled(model, task.x_train[: config.batch_size]) if compile else model
    curve = Curve()
    kept: dict[str, dict[str, Tensor]] = {}
    best = dict.fromkeys(keep, -np.inf)
    running = torch.zeros((), device=device)
    counted = 0

    def evaluate(step: int) -> None:
        curve.steps.append(step)
        for split, value in zip(SPLITS, _scores(model, task), strict=True):
            getattr(curve, split).append(value)
        curve.loss.append(float(running) / counted if counted else math.nan)
        for split in keep:
            value = getattr(curve, split)[-1]
            if value > best[split]:
                best[split] = value
                kept[split] = copy.deepcopy(model.state_dict())

    model.train()
    evaluate(0)
    for step, loss in training_steps(
        model, task.x_train, task.y_train, config, loss_fn, optimizer, forward=forward
    ):
        running += loss
        counted += 1
        if step % config.eval_interval == 0 or step == config.steps:
            evaluate(step)
            running.zero_()
            counted = 0
            if not math.isfinite(curve.loss[-1]):
                curve.diverged = step
                break
    return curve, kept, time.perf_counter() - started


# --- choosing after the fact ----------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """One seed's chosen run and evaluation, and the metrics there."""

    seed: int
    lr: float
    step: int
    train: float
    val: float
    test: float


Curves = Mapping[tuple[float, int], Mapping[str, Sequence[float]]]
"""Recorded curves (``Curve.to_dict``) by ``(learning rate, seed)``."""


def _pick(curves: Curves, lr: float, seed: int, index: int) -> Pick:
    curve = curves[(lr, seed)]
    return Pick(
        seed=seed,
        lr=lr,
        step=int(curve["steps"][index]),
        train=float(curve["train"][index]),
        val=float(curve["val"][index]),
        test=float(curve["test"][index]),
    )


def _best_index(values: Sequence[float]) -> int | None:
    """The first index of the largest finite value (None if there is none)."""
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).any():
        return None
    return int(np.nanargmax(np.where(np.isfinite(array), array, np.nan)))


def _lrs_and_seeds(curves: Curves) -> tuple[list[float], list[int]]:
    lrs = list(dict.fromkeys(lr for lr, _ in curves))
    seeds = sorted({seed for _, seed in curves})
    return lrs, seeds


def choose_published(curves: Curves) -> list[Pick]:
    """Per seed, the best test metric over every checkpoint and learning rate (the paper's
    rule, applied to each seed)."""
    lrs, seeds = _lrs_and_seeds(curves)
    picks = []
    for seed in seeds:
        best: Pick | None = None
        for lr in lrs:
            if (lr, seed) not in curves:
                continue
            index = _best_index(curves[(lr, seed)]["test"])
            if index is None:
                continue
            pick = _pick(curves, lr, seed, index)
            if best is None or pick.test > best.test:
                best = pick
        if best is not None:
            picks.append(best)
    return picks


@dataclass(frozen=True)
class ValidationChoice:
    lr: float
    picks: list[Pick]
    mean_by_lr: dict[float, float]


def choose_on_validation(curves: Curves) -> ValidationChoice:
    """The learning rate with the best mean best-validation metric over seeds; per seed, the
    best-validation evaluation of its run (diverged or empty runs count as NaN)."""
    lrs, seeds = _lrs_and_seeds(curves)
    picks: dict[float, list[Pick]] = {}
    means: dict[float, float] = {}
    for lr in lrs:
        chosen = []
        for seed in seeds:
            if (lr, seed) not in curves:
                continue
            index = _best_index(curves[(lr, seed)]["val"])
            if index is not None:
                chosen.append(_pick(curves, lr, seed, index))
        picks[lr] = chosen
        complete = len(chosen) == sum((lr, s) in curves for s in seeds)
        means[lr] = float(np.mean([p.val for p in chosen])) if chosen and complete else math.nan
    finite = [lr for lr in lrs if math.isfinite(means[lr])]
    if not finite:
        raise ValueError("no learning rate has a finite validation metric on every seed")
    best_lr = max(finite, key=lambda lr: (means[lr], -lrs.index(lr)))
    return ValidationChoice(best_lr, picks[best_lr], means)


__all__ = [
    "Curve",
    "Pick",
    "ValidationChoice",
    "choose_on_validation",
    "choose_published",
    "compiled",
    "train_with_curve",
]
