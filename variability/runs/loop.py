"""The one training loop: optimizer, learning-rate schedule and batches of a ``TrainConfig``.

``training_steps`` yields after every optimizer step; the caller does its own bookkeeping
between steps (the trainer records, validates and checkpoints; a reproduction scores every split
for a learning curve). Everything the loop draws is a function of (config, step), so a loop
started at step s after a checkpoint of step s continues as an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from variability.runs.batches import batch_sampler
from variability.runs.config import TrainConfig

__all__ = ["make_optimizer", "training_steps"]

StepContext = Callable[[int], contextlib.AbstractContextManager]
"""``context(step)``: a context manager the step's forward and backward pass run inside."""


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) as the config says.

    ``foreach``: one kernel per step for all parameters, not one per tensor; on the CPU (where
    PyTorch's default is per tensor) that is a fifth of a small deep model's step time.
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        foreach=True,
    )


def training_steps(
    model: nn.Module,
    x_train: Tensor,
    y_train: Tensor,
    config: TrainConfig,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    start: int = 0,
    context: StepContext | None = None,
    forward: Callable[[Tensor], Tensor] | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """Steps ``start + 1 .. config.steps``: set the scheduled rate, draw the step's batch, one
    optimizer update; yields ``(step, loss)`` after each (the loss detached, not yet synced).

    ``forward``: what computes the outputs (default ``model``; a compiled version of it, say).
    """
    batches = batch_sampler(
        config.sampling, len(x_train), config.batch_size, config.seed, x_train.device
    )
    schedule, steps = config.schedule, config.steps
    run = forward or model
    for step in range(start + 1, steps + 1):
        rows = batches.indices(step)
        xb, yb = x_train[rows], y_train[rows]
        rate = config.lr * schedule.multiplier(step, steps)
        for group in optimizer.param_groups:
            group["lr"] = rate
        with context(step) if context is not None else contextlib.nullcontext():
            loss = loss_fn(run(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        yield step, loss.detach()
