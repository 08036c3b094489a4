"""Running a model for its outputs alone: eval mode, no gradients, in chunks, mode restored.

The probes, the trainer, the Monitor's probe set, the tasks' scores and the experiments all do
this. It is generic (any ``nn.Module``), so it lives with the probe engine, which imports
nothing of the project's: every layer above may import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


def set_mode(model: nn.Module, training: bool) -> None:
    """``model.train(training)``, skipped where nothing changes or the mode is fixed.

    A module from ``torch.export`` was traced in one mode and refuses ``train()``/``eval()``.
    """
    if model.training == training:
        return
    with contextlib.suppress(NotImplementedError):
        model.train(training)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients for the block; the model's train/eval mode is restored on
    every exit path, an exception included."""
    training = model.training
    set_mode(model, False)
    try:
        with torch.no_grad():
            yield model
    finally:
        set_mode(model, training)


def model_device(model: nn.Module, default: torch.device | None = None) -> torch.device:
    """The device of the model's first parameter (``default``, else the CPU, if it has none)."""
    return next((p.device for p in model.parameters()), default or torch.device("cpu"))


def predict(
    model: nn.Module,
    inputs: Tensor,
    *,
    batch_size: int = 8192,
    device: torch.device | str | None = None,
) -> Tensor:
    """The model's outputs on ``inputs`` (on ``device``), forward in chunks of ``batch_size``
    rows under ``evaluating``. ``device`` defaults to the model's (the inputs' for a model
    without parameters); each chunk is moved there."""
    target = torch.device(device) if device is not None else model_device(model, inputs.device)
    with evaluating(model):
        return torch.cat([model(chunk.to(target)) for chunk in inputs.split(batch_size)])


__all__ = ["evaluating", "model_device", "predict", "set_mode"]
