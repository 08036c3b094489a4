"""Model files: the spec and the weights in one file that ``torch.load(weights_only=True)`` reads.

Layout (a dict written with ``torch.save``, so a zip archive)::

    {
        "format": "variability-model",
        "format_version": 1,
        "variability_version": "0.1.0",
        "spec": {"family": ..., "d_in": ..., ..., "seed": ...},   # build_model(**spec)
        "state_dict": {name: tensor, ...},                        # CPU tensors
    }

Only plain containers, strings, numbers and tensors: loading never runs pickled code.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from variability.arch.builders import Network, rebuild
from variability.arch.errors import (
    CorruptModelFileError,
    ModelFileError,
    ModelFileNotFoundError,
    NotAModelFileError,
    PickledObjectsError,
    SpecError,
)
from variability.arch.params import param_count
from variability.atomic import atomic_file
from variability.versions import VERSION

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LEGACY_MAGIC",
    "ZIP_MAGIC",
    "check_model_path",
    "check_model_payload",
    "check_spec_fits_weights",
    "describe_payload",
    "is_model_payload",
    "load_model",
    "load_payload",
    "model_from_payload",
    "read_model_file",
    "save_model",
]

FORMAT = "variability-model"
FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF"
"""The first bytes of PyTorch's legacy (before 1.6, not zip) format: its pickled magic number."""


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (a built Network, or any module with a ``spec`` dict) and its weights.

    Written to a temporary name in the same directory and renamed, so an interrupted save never
    leaves a half-written file under ``path``. Returns the path written.
    """
    spec = getattr(model, "spec", None)
    if not isinstance(spec, dict):
        raise SpecError(
            "save_model needs a model built by build_model (it carries the spec that rebuilds it); "
            f"got a {type(model).__name__} without a spec"
        )
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "variability_version": VERSION,
        "spec": dict(spec),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, "wb") as stream:
        torch.save(payload, stream)
    return target


def check_model_path(path: str | os.PathLike[str]) -> bytes:
    """The first bytes of the file at ``path``, after the errors for missing, directory, empty."""
    file = Path(path)
    if not file.exists():
        raise ModelFileNotFoundError(f"no model file at {file}", file)
    if file.is_dir():
        raise NotAModelFileError(f"{file} is a directory, not a model file", file)
    with open(file, "rb") as stream:
        head = stream.read(8)
    if not head:
        raise CorruptModelFileError(f"{file} is empty", file)
    return head


def load_payload(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)`` of a PyTorch archive, its failures as ModelFileErrors.

    A file holding pickled Python objects raises PickledObjectsError: it is never unpickled.
    """
    file = Path(path)
    if not check_model_path(file).startswith((ZIP_MAGIC, LEGACY_MAGIC)):
        raise NotAModelFileError(
            f"{file} is not a variability model file (not a PyTorch archive: it does not start "
            "with the zip signature that torch.save writes)",
            file,
        )
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" in str(error).lower():
            raise PickledObjectsError(
                f"{file} is a PyTorch file holding pickled Python objects (a whole pickled "
                "module?), not a variability model file; it was not loaded, because unpickling "
                "runs code",
                file,
            ) from None
        raise CorruptModelFileError(f"{file} is damaged: {_first_line(error)}", file) from None
    except Exception as error:  # zip, CRC, decoding errors: a truncated or damaged archive
        raise CorruptModelFileError(
            f"{file} is truncated or damaged and cannot be read ({_first_line(error)})", file
        ) from None


def is_model_payload(payload: object) -> bool:
    """Whether a loaded payload is a variability model file's (rather than a state dict...)."""
    return isinstance(payload, Mapping) and payload.get("format") == FORMAT


def check_model_payload(payload: object, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The payload of a variability model file, checked: format, version, spec and weights."""
    file = Path(path)
    if not is_model_payload(payload):
        raise NotAModelFileError(
            f"{file} is a PyTorch file but not a variability model file "
            f"({describe_payload(payload)}); a bare state dict needs the code that builds its "
            "architecture",
            file,
        )
    assert isinstance(payload, Mapping)
    version = payload.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CorruptModelFileError(f"{file} has an invalid format_version {version!r}", file)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{file} uses model file format {version}, newer than this version of variability "
            f"reads ({FORMAT_VERSION}); upgrade variability to load it",
            file,
        )
    if not isinstance(payload.get("spec"), Mapping) or not isinstance(
        payload.get("state_dict"), Mapping
    ):
        raise CorruptModelFileError(f"{file} lacks its spec or its weights", file)
    return dict(payload)


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked payload of a model file (``spec``, ``state_dict``...), without building it."""
    return check_model_payload(load_payload(path), path)


def model_from_payload(
    payload: Mapping[str, Any],
    path: str | os.PathLike[str],
    device: torch.device | str | None = None,
) -> Network:
    """Build the model a checked payload describes and load its weights (onto ``device``)."""
    file = Path(path)
    check_spec_fits_weights(payload["spec"], payload["state_dict"], file)
    try:
        model = rebuild(dict(payload["spec"]))
    except (SpecError, TypeError) as error:
        raise CorruptModelFileError(
            f"{file} has a spec that cannot be built: {error}", file
        ) from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError) as error:
        raise CorruptModelFileError(
            f"{file}: the weights do not fit the spec ({_first_line(error)})", file
        ) from None
    if device is not None:
        model.to(device)
    return model


def check_spec_fits_weights(
    spec: Mapping[str, Any], state: Mapping[str, Any], path: str | os.PathLike[str]
) -> None:
    """Refuse a spec that the file's weights cannot fill, before anything is built.

    Building allocates what the spec describes: a 4-KB file whose spec says width 200,000 would
    ask for hundreds of GB before ``load_state_dict`` could notice. So the first and last
    layers' shapes are checked against the spec, and the spec's parameter count against the
    number of values the file holds. A spec that is not a spec is left to ``rebuild`` to name.
    """
    try:
        family, d_in, d_out = spec["family"], spec["d_in"], spec["d_out"]
        depth, width = spec["depth"], spec["width"]
        needed = param_count(family, d_in, d_out, depth, width)
    except (KeyError, TypeError, SpecError):
        return
    file = Path(path)
    for key, shape in (("linear1.weight", (width, d_in)), ("out.weight", (d_out, width))):
        tensor = state.get(key)
        if isinstance(tensor, torch.Tensor) and tuple(tensor.shape) != shape:
            raise CorruptModelFileError(
                f"{file}: the weights do not fit the spec ({key} has shape "
                f"{tuple(tensor.shape)}; the spec's width {width} needs {shape})",
                file,
            )
    held = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
    if needed > held:
        raise CorruptModelFileError(
            f"{file}: the weights do not fit the spec (it describes {needed:,} parameters; the "
            f"file holds {held:,} values)",
            file,
        )


def load_model(path: str | os.PathLike[str], device: torch.device | str | None = None) -> Network:
    """Rebuild the model a file describes and load its weights (onto ``device`` if given).

    Errors (all ValueError subclasses, each one sentence): ModelFileNotFoundError,
    NotAModelFileError (another kind of file; PickledObjectsError for pickled Python objects),
    CorruptModelFileError (truncated, damaged, or weights that do not fit the spec),
    ModelFileError (a newer format).
    """
    return model_from_payload(read_model_file(path), path, device)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].split(". ")[0][:200]


def describe_payload(payload: object) -> str:
    """What a PyTorch file holds, in a few words, for messages about files of the wrong kind."""
    if isinstance(payload, Mapping):
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            count = len(payload)
            return f"it looks like a bare state dict of {count} tensor{'s' if count > 1 else ''}"
        keys = ", ".join(sorted(map(str, payload))[:5])
        return f"a dict with keys {keys or '(none)'}"
    return f"it holds a {type(payload).__name__}"
