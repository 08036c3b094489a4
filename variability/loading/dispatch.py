"""``load_user_model``: every format the toolkit reads, told apart before anything is loaded.

A directory is a Hugging Face model folder (huggingface.py), a file whose bytes open as
safetensors does is plain weights (safetensors_file.py); every other file is told apart and read
by models.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from variability.loading.errors import ArchError
from variability.loading.huggingface import load_huggingface_folder
from variability.loading.models import LoadedModel
from variability.loading.models import load_user_model as load_model_file
from variability.loading.safetensors_file import is_safetensors, load_safetensors

__all__ = ["load_user_model"]


def load_user_model(
    path: str | Path,
    *,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
    trust_pickle: bool = False,
    trust_remote_code: bool = False,
    device: torch.device | str | None = None,
    verbose: bool = False,
) -> LoadedModel:
    """Read the model at ``path`` onto ``device``: a model file (models.py), ``.safetensors``
    weights with ``arch``, or a Hugging Face folder (code from the folder runs only with
    ``trust_remote_code``). ``verbose``: let torch log while it reads a model file."""
    file = Path(path)
    if file.is_dir():
        if arch is not None:
            raise ArchError(
                f"--arch builds the model for a state dict, but {file} is a directory (a Hugging "
                "Face model folder carries its architecture in config.json)"
            )
        loaded = load_huggingface_folder(file, trust_remote_code=trust_remote_code)
    elif is_safetensors(file):
        loaded = load_safetensors(file, arch, arch_kwargs)
    else:
        return load_model_file(
            file,
            arch=arch,
            arch_kwargs=arch_kwargs,
            trust_pickle=trust_pickle,
            device=device,
            verbose=verbose,
        )
    if device is not None:
        loaded.module.to(device)
    return loaded
