"""Writing a model back in the format it was read from (``variability init --out``).

Why the input's format: the user's own tools read that format, and a state dict stays a state
dict (with the same keys, under the same checkpoint key, beside the checkpoint's other entries).
Every file is written under a temporary name in the target's folder and renamed, so a reader
never sees half a file and a failed write leaves nothing behind; a folder (Hugging Face) is
built beside the target and put in its place.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from variability.arch.files import load_payload, save_model
from variability.errors import UserError
from variability.loading.formats import FileKind, sniff_model_file
from variability.loading.models import LoadedModel, _state_dict_in, torch_logging_quiet
from variability.loading.safetensors_file import is_safetensors

__all__ = ["write_like_input"]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def write_like_input(loaded: LoadedModel, out: str | os.PathLike[str]) -> Path:
    """Write ``loaded.module`` (weights changed in place) to ``out`` in ``loaded.path``'s format.
    Returns the path written."""
    source, target = loaded.path, Path(out)
    if target.exists() and target.resolve() == source.resolve():
        raise UserError(f"--out {target} is the model being fixed; write the fixed model elsewhere")
    if source.is_dir():
        return _write_folder(loaded, target)
    if target.is_dir():
        raise UserError(f"--out {target} is a folder; give the path of the file to write")
    if is_safetensors(source):
        return _atomic(target, lambda path: _save_safetensors(loaded, path))
    kind = sniff_model_file(source)
    if kind is FileKind.EXPORT:
        return _atomic(target, lambda path: _save_export(loaded, path))
    if kind is FileKind.PICKLE:
        return _atomic(target, lambda path: _dump_pickle(loaded, path))
    if kind is FileKind.TORCHSCRIPT:
        raise UserError(f"{source} is a TorchScript archive: its weights cannot be written back")
    if loaded.format == "variability model file":
        return save_model(loaded.module, target)
    if loaded.format == "pickled module":
        return _atomic(target, lambda path: torch.save(loaded.module, path))
    return _atomic(target, lambda path: torch.save(_state_payload(loaded), path))


def _atomic(target: Path, write: Callable[[Path], None]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _cpu_state(loaded: LoadedModel) -> dict[str, torch.Tensor]:
    """The module's tensors, each its own CPU copy (tied weights become separate tensors)."""
    return {k: v.detach().cpu().clone().contiguous() for k, v in loaded.module.state_dict().items()}


def _state_payload(loaded: LoadedModel) -> object:
    """The file's payload with its state dict's tensors replaced by the model's."""
    payload = load_payload(loaded.path)
    state, where = _state_dict_in(payload)
    if state is None:
        raise UserError(f"{loaded.path} no longer holds a state dict; nothing was written")
    fixed = _cpu_state(loaded)
    new_state = {key: fixed.get(key, value) for key, value in state.items()}
    if not where:
        return new_state
    assert isinstance(payload, dict)
    key = next(k for k in payload if isinstance(k, str) and where.endswith(repr(k)))
    return {**payload, key: new_state}


def _save_safetensors(loaded: LoadedModel, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(_cpu_state(loaded), str(path))


def _save_export(loaded: LoadedModel, path: Path) -> None:
    """The program as read, with its parameters and buffers replaced by the module's."""
    with warnings.catch_warnings(), torch_logging_quiet():
        warnings.simplefilter("ignore")
        program = torch.export.load(loaded.path)
        fixed = loaded.module.state_dict()
        with torch.no_grad():
            for name, tensor in program.state_dict.items():
                if name in fixed:
                    tensor.copy_(fixed[name].to(tensor.device))
        torch.export.save(program, path)


def _dump_pickle(loaded: LoadedModel, path: Path) -> None:
    with open(path, "wb") as stream:
        pickle.dump(loaded.module, stream)


def _write_folder(loaded: LoadedModel, target: Path) -> Path:
    """A copy of the Hugging Face folder with the model's weights as ``model.safetensors``."""
    if target.exists() and not target.is_dir():
        raise UserError(f"--out {target} is a file; a Hugging Face model is written as a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(loaded.path, staging, dirs_exist_ok=True)
        for name in _WEIGHT_FILES:
            (staging / name).unlink(missing_ok=True)
        _save_safetensors(loaded, staging / "model.safetensors")
        if target.exists():
            retired = target.parent / f".{target.name}.old-{os.getpid()}"
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
