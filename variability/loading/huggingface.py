"""Hugging Face model folders: ``config.json`` with ``model.safetensors`` or ``pytorch_model.bin``.

The model is built by ``transformers`` (its auto classes, from the folder's config) with the
folder's weights, read without running code from the folder:

- ``model.safetensors`` is a plain tensor format;
- ``pytorch_model.bin`` is a pickle: it is read here with ``torch.load(weights_only=True)`` only
  and handed to transformers as a state dict, so nothing else ever unpickles it;
- a config that names its own modelling code (``auto_map``) is refused unless
  ``trust_remote_code`` is given, before any of that code is imported.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from variability.arch.errors import CorruptModelFileError, ModelFileError, NotAModelFileError
from variability.errors import UserError, first_line
from variability.loading.models import LoadedModel
from variability.loading.shapes import InputHint

__all__ = ["is_huggingface_folder", "load_huggingface_folder"]

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class RemoteCodeError(ModelFileError):
    """A folder whose config names modelling code of its own, without ``trust_remote_code``."""


def is_huggingface_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG).is_file()


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise UserError(
            "reading a Hugging Face model folder needs transformers: pip install transformers"
        ) from None


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers' loading messages and progress bars are not for this command's output."""
    logging = transformers.utils.logging
    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _read_config_file(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptModelFileError(
            f"{folder / CONFIG} is not readable JSON ({first_line(error)})", folder
        ) from None
    if not isinstance(config, dict):
        raise CorruptModelFileError(f"{folder / CONFIG} holds no JSON object", folder)
    return config


def load_huggingface_folder(folder: Path, *, trust_remote_code: bool = False) -> LoadedModel:
    """The model in a Hugging Face folder, built by transformers' auto classes."""
    if not is_huggingface_folder(folder):
        raise NotAModelFileError(
            f"{folder} is a directory, not a model file; a Hugging Face model folder would hold "
            f"{CONFIG} and {' or '.join(WEIGHTS)}",
            folder,
        )
    weights = next((folder / name for name in WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        raise NotAModelFileError(
            f"{folder} has a {CONFIG} but no weights: expected {' or '.join(WEIGHTS)} "
            "(sharded checkpoints are not read)",
            folder,
        )
    raw = _read_config_file(folder)
    if raw.get("auto_map") and not trust_remote_code:
        raise RemoteCodeError(
            f"{folder}'s {CONFIG} names modelling code of its own (auto_map), which would run "
            "on loading; it was not run. If you trust the folder, pass --trust-remote-code",
            folder,
        )
    transformers = _transformers()
    with _quiet(transformers):
        config = _config(transformers, folder, trust_remote_code)
        model_class = _model_class(transformers, config, trust_remote_code)
        model, info = _build(model_class, folder, weights, config, trust_remote_code)
    model.eval()
    notes = _loading_notes(info)
    vocab = getattr(config, "vocab_size", None)
    architecture = type(model).__name__
    hint = (
        InputHint(
            None,
            f"the config: {architecture} takes token ids (vocabulary of {vocab})",
            vocab=int(vocab),
            max_length=getattr(config, "max_position_embeddings", None),
        )
        if isinstance(vocab, int) and vocab > 0
        else InputHint(None, f"the config of {architecture}")
    )
    return LoadedModel(
        model,
        folder,
        "Hugging Face model folder",
        f"Hugging Face model folder: {architecture} ({config.model_type}), weights from "
        f"{weights.name}",
        hint,
        notes=notes,
    )


def _config(transformers: Any, folder: Path, trust_remote_code: bool) -> Any:
    try:
        return transformers.AutoConfig.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as error:
        raise CorruptModelFileError(
            f"transformers cannot read {folder / CONFIG}: {first_line(error)}", folder
        ) from None


def _model_class(transformers: Any, config: Any, trust_remote_code: bool) -> Any:
    """The class that saved the folder (``architectures`` in the config), else AutoModel."""
    for name in getattr(config, "architectures", None) or []:
        model_class = getattr(transformers, str(name), None)
        if isinstance(model_class, type) and hasattr(model_class, "from_pretrained"):
            return model_class
    return transformers.AutoModel


def _build(
    model_class: Any, folder: Path, weights: Path, config: Any, trust_remote_code: bool
) -> tuple[Any, dict[str, Any]]:
    options: dict[str, Any] = dict(
        config=config, output_loading_info=True, trust_remote_code=trust_remote_code
    )
    try:
        if weights.suffix == ".safetensors":
            return model_class.from_pretrained(
                folder, local_files_only=True, use_safetensors=True, **options
            )
        state = _read_bin(weights)
        return model_class.from_pretrained(None, state_dict=state, **options)
    except ModelFileError:
        raise
    except Exception as error:
        raise CorruptModelFileError(
            f"transformers could not build {model_class.__name__} from {folder} with the "
            f"weights in {weights.name}: {first_line(error)}",
            folder,
        ) from None


def _read_bin(weights: Path) -> dict[str, torch.Tensor]:
    """``pytorch_model.bin`` with ``torch.load(weights_only=True)``: tensors only, no code."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CorruptModelFileError(
            f"{weights} holds pickled Python objects beside its tensors; it was not loaded, "
            f"because unpickling them runs code ({first_line(error)})",
            weights,
        ) from None
    except Exception as error:
        raise CorruptModelFileError(
            f"{weights} is not a readable PyTorch file ({first_line(error)})", weights
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NotAModelFileError(f"{weights} holds no state dict of tensors", weights)
    return state


def _loading_notes(info: dict[str, Any]) -> list[str]:
    notes = []
    for key, what in (
        ("missing_keys", "weights missing from the folder, left at their random initialisation"),
        ("unexpected_keys", "weights in the folder that the model does not use"),
        ("mismatched_keys", "weights whose shape does not fit, left at random"),
    ):
        names = sorted(str(k) for k in info.get(key) or [])
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            notes.append(f"{what}: {shown}")
    return notes
