"""``checkpoints/last.pt``: what a resumed run needs, written whole or not at all.

A dict of plain containers, numbers and tensors (weights, optimizer state, RNG state, the best
checkpoint so far, the monitor's warnings), so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from variability.atomic import atomic_file
from variability.runs.run_dir import RunDirError

CHECKPOINT_FORMAT = "variability-checkpoint"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint under a temporary name and rename it: never half a file. Its folder
    is made with the first checkpoint, so a run that writes none (a Monitor's) has none."""
    try:
        path.parent.mkdir(exist_ok=True)
        with atomic_file(path, "wb") as stream:
            torch.save(payload, stream)
    except OSError as error:
        raise RunDirError(f"could not write the checkpoint {path}: {error.strerror}") from None


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as error:
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise RunDirError(
            f"the checkpoint {path} is damaged and cannot be read ({first}); delete it to "
            "start the run again from step 0"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"{path} is not a variability checkpoint")
    return payload


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
