"""Choosing the device: ``auto`` takes CUDA when there is a GPU and the CPU otherwise."""

from __future__ import annotations

import torch

from variability.errors import UserError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, with clear errors."""
    if isinstance(name, torch.device):
        return name
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(
                f"device {name!r} was asked for, but this machine has no usable CUDA GPU "
                "(use --device cpu, or --device auto to take a GPU only when there is one)"
            )
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"device {name!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return device
    raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
