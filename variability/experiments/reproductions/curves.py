"""Training with a learning curve on both held-out splits, and choosing checkpoints after the fact.

The published checkerboard results chose the learning rate and the checkpoint by test accuracy.
To show what that choice is worth, every run here scores its model on the validation *and* the
test split at each evaluation; the selection protocols are then applied to the same runs:

- ``"test"`` (as published): per run, the evaluation with the best test metric; the learning
  rate whose runs have the best mean of those.
- ``"val"`` (honest): per run, the evaluation with the best validation metric; the learning rate
  whose runs have the best mean validation metric there; the test metric is read at those points.

Ties go to the earliest evaluation and the first learning rate listed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from variability.probes.evaluation import predict
from variability.runs.batches import BatchOrder
from variability.tasks import Task

PROTOCOLS = ("test", "val")


@dataclass
class Curve:
    """Metrics of one run at every evaluation (step 0 is before training)."""

    steps: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[Any]]:
        return {k: list(getattr(self, k)) for k in ("steps", "train", "val", "test", "loss")}


def _score(model: nn.Module, task: Task, split: str, device: torch.device) -> float:
    x, y = task.split(split)
    return task.score(predict(model, x, device=device), y.to(device))


def train_with_curve(
    model: nn.Module,
    task: Task,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    eval_every: int,
    seed: int,
    device: torch.device,
    keep: Sequence[str] = (),
) -> tuple[Curve, dict[str, dict[str, torch.Tensor]], float]:
    """Adam on the task's loss; every ``eval_every`` steps the metric on train, val and test.

    ``keep``: for each split named, a copy of the weights at that split's best evaluation (for
    drawing the chosen model). Returns the curve, the kept weights and the seconds taken.
    """
    started = time.perf_counter()
    model.to(device)
    x_train, y_train = task.x_train.to(device), task.y_train.to(device)
    loss_fn = task.loss_fn()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    full_batch = batch_size >= len(x_train)
    order = None if full_batch else BatchOrder(len(x_train), batch_size, seed, device)
    curve = Curve()
    kept: dict[str, dict[str, torch.Tensor]] = {}
    best = dict.fromkeys(keep, -np.inf)
    running, counted = 0.0, 0

    def evaluate(step: int) -> None:
        nonlocal running, counted
        model.eval()
        curve.steps.append(step)
        for split in ("train", "val", "test"):
            getattr(curve, split).append(_score(model, task, split, device))
        curve.loss.append(running / counted if counted else float("nan"))
        running, counted = 0.0, 0
        model.train()
        for split in keep:
            value = getattr(curve, split)[-1]
            if value > best[split]:
                best[split] = value
                kept[split] = copy.deepcopy(model.state_dict())

    model.train()
    evaluate(0)
    for step in range(1, steps + 1):
        if order is None:
            xb, yb = x_train, y_train
        else:
            rows = order.indices(step)
            xb, yb = x_train[rows], y_train[rows]
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        counted += 1
        if step % eval_every == 0 or step == steps:
            evaluate(step)
    return curve, kept, time.perf_counter() - started


@dataclass(frozen=True)
class Selection:
    """The chosen learning rate and, per seed, the chosen evaluation and its metrics."""

    protocol: str
    lr: float
    seeds: tuple[int, ...]
    steps: tuple[int, ...]
    test: tuple[float, ...]
    val: tuple[float, ...]
    mean_by_lr: dict[float, float]


def choose(
    curves: Mapping[tuple[float, int], Mapping[str, Sequence[float]]], protocol: str
) -> Selection:
    """Apply a selection protocol to runs keyed by ``(lr, seed)`` (curves as ``Curve.to_dict``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    lrs = list(dict.fromkeys(lr for lr, _ in curves))
    picks: dict[float, list[tuple[int, int]]] = {}
    means: dict[float, float] = {}
    for lr in lrs:
        chosen = []
        for (run_lr, seed), curve in curves.items():
            if run_lr != lr:
                continue
            values = np.asarray(curve[protocol], dtype=float)
            chosen.append((seed, int(np.nanargmax(values))))
        picks[lr] = sorted(chosen)
        means[lr] = float(
            np.mean([curves[(lr, seed)][protocol][index] for seed, index in picks[lr]])
        )
    best_lr = max(lrs, key=lambda lr: (means[lr], -lrs.index(lr)))
    rows = picks[best_lr]
    return Selection(
        protocol=protocol,
        lr=best_lr,
        seeds=tuple(seed for seed, _ in rows),
        steps=tuple(int(curves[(best_lr, s)]["steps"][i]) for s, i in rows),
        test=tuple(float(curves[(best_lr, s)]["test"][i]) for s, i in rows),
        val=tuple(float(curves[(best_lr, s)]["val"][i]) for s, i in rows),
        mean_by_lr=means,
    )


__all__ = ["PROTOCOLS", "Curve", "Selection", "choose", "train_with_curve"]
