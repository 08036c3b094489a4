"""Reading a model a user hands us, in any of the formats the toolkit accepts.

- a variability model file (``save_model``): the architecture travels with the weights;
- a state dict, with ``arch="package.module:factory"`` (and ``arch_kwargs``) to build the model;
- a ``torch.export`` program (``.pt2``): probed through its graph; inspected first, and refused
  without ``trust_pickle`` if loading it would run code from the file (see ``export_archive``);
- a TorchScript archive: compiled code hides its layers from hooks, so only the output is probed;
- a whole pickled module, only with ``trust_pickle=True``: unpickling runs code from the file, so
  without the flag the file is refused before any of it is unpickled.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from variability.arch.errors import CorruptModelFileError, NotAModelFileError, PickledObjectsError
from variability.arch.files import (
    check_model_payload,
    describe_payload,
    is_model_payload,
    load_payload,
    model_from_payload,
)
from variability.errors import first_line
from variability.loading.errors import ArchError, UntrustedPickleError
from variability.loading.export_archive import check_export_archive
from variability.loading.factory import build_from_factory, cwd_on_path, fit_state_dict
from variability.loading.formats import FileKind, sniff_model_file
from variability.loading.shapes import UNKNOWN, InputHint, hint_from_first_layer

__all__ = ["OUTPUT_ONLY_REASON", "LoadedModel", "load_user_model"]

OUTPUT_ONLY_REASON = (
    "TorchScript archive: its layers are compiled code that hooks cannot see into, so only the "
    "output's figures are measured. To see every site, probe a torch.export program (.pt2), a "
    "state dict with --arch, or a variability model file."
)

_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
"""Where training checkpoints commonly keep the state dict."""


@dataclass
class LoadedModel:
    """A model ready to probe, with what we know about it.

    ``format``: the file's kind, in words. ``description``: a short line for the output.
    ``output_only``: its inside cannot be probed (TorchScript). ``notes``: things the user should
    know about how it was read.
    """

    module: nn.Module
    path: Path
    format: str
    description: str
    input_hint: InputHint = UNKNOWN
    output_only: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the model's weights (float32 when it has none)."""
        tensors = [*self.module.parameters(), *self.module.buffers()]
        return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def load_user_model(
    path: str | Path,
    *,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
    trust_pickle: bool = False,
    device: torch.device | str | None = None,
    verbose: bool = False,
) -> LoadedModel:
    """Read the model at ``path`` (see the module docstring for the formats) onto ``device``.

    ``verbose``: let torch log what it tries while it reads the file (silenced otherwise: the
    loader's own error says what went wrong, in one line).
    """
    file = Path(path)
    kind = sniff_model_file(file)
    if arch is not None and kind is not FileKind.TORCH:
        raise ArchError(f"--arch builds the model for a state dict, but {file} is a {kind}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loaders' deprecation chatter is not for the user
        if kind is FileKind.EXPORT:
            loaded = _load_export(file, trust_pickle, verbose)
        elif kind is FileKind.TORCHSCRIPT:
            loaded = _load_torchscript(file)
        elif kind is FileKind.PICKLE:
            loaded = _load_pickle(file, trust_pickle, bare=True)
        else:
            loaded = _load_torch_file(file, arch, arch_kwargs, trust_pickle)
    if device is not None:
        loaded.module.to(device)
    return loaded


def _load_torch_file(
    file: Path, arch: str | None, arch_kwargs: Mapping[str, Any] | None, trust_pickle: bool
) -> LoadedModel:
    try:
        payload = load_payload(file)
    except PickledObjectsError:
        return _load_pickle(file, trust_pickle, bare=False)
    if is_model_payload(payload):
        if arch is not None:
            raise ArchError(
                f"{file} is a variability model file: it carries its architecture, so drop --arch"
            )
        checked = check_model_payload(payload, file)
        network = model_from_payload(checked, file)
        spec = network.spec
        return LoadedModel(
            network,
            file,
            "variability model file",
            f"variability model file: {spec['family']}, depth {spec['depth']}, "
            f"width {spec['width']}, {spec['activation']}",
            InputHint((int(spec["d_in"]),), "the model file's spec (d_in)", exact=True),
        )
    state, where = _state_dict_in(payload)
    if state is None:
        raise NotAModelFileError(
            f"{file} is a PyTorch file but holds no model ({describe_payload(payload)})", file
        )
    if arch is None:
        raise ArchError(
            f"{file} holds a state dict ({len(state)} tensors{where}) but not the architecture "
            "it belongs to: pass --arch package.module:factory (and --arch-kwargs '{...}' for "
            "its arguments) to build the model"
        )
    model = build_from_factory(arch, arch_kwargs)
    fit_state_dict(model, state, str(file), arch)
    return LoadedModel(
        model,
        file,
        "state dict",
        f"state dict of {len(state)} tensors{where}, in a {type(model).__name__} built by {arch}",
        hint_from_first_layer(model),
    )


def _state_dict_in(payload: Any) -> tuple[dict[str, torch.Tensor] | None, str]:
    """The state dict in a payload (bare, or under a checkpoint key) and where it was found."""

    def tensors(value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and bool(value)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
        )

    if tensors(payload):
        return dict(payload), ""
    if isinstance(payload, Mapping):
        for key in _CHECKPOINT_KEYS:
            if tensors(payload.get(key)):
                return dict(payload[key]), f", under the key {key!r}"
    return None, ""


def _load_pickle(file: Path, trust_pickle: bool, *, bare: bool) -> LoadedModel:
    what = "a pickle" if bare else "a PyTorch file holding pickled Python objects"
    if not trust_pickle:
        raise UntrustedPickleError(
            f"{file} is {what} (a whole pickled module?): it was not loaded, because unpickling "
            "runs any code the file contains. If you trust the file, pass --trust-pickle to "
            "unpickle it; safer: save a state dict and pass --arch, or save a torch.export "
            "program (.pt2)",
            file,
        )
    try:
        with cwd_on_path():
            if bare:
                with open(file, "rb") as stream:
                    obj = pickle.load(stream)
            else:
                obj = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CorruptModelFileError(
            f"{file} could not be unpickled: {type(error).__name__}: {first_line(error)}", file
        ) from None
    if not isinstance(obj, nn.Module):
        raise NotAModelFileError(
            f"{file} was unpickled (--trust-pickle) but holds a {type(obj).__name__}, "
            "not a torch.nn.Module",
            file,
        )
    return LoadedModel(
        obj,
        file,
        "pickled module",
        f"pickled {type(obj).__name__}, unpickled with --trust-pickle",
        hint_from_first_layer(obj),
    )


def _load_export(file: Path, trust_pickle: bool, verbose: bool = False) -> LoadedModel:
    if not trust_pickle:
        check_export_archive(file)  # refuses, before torch reads it, what would run code
    try:
        with contextlib.nullcontext() if verbose else torch_logging_quiet():
            program = torch.export.load(file)
            module = program.module()
    except Exception as error:
        detail = "" if verbose else " (--verbose shows torch's log)"
        raise CorruptModelFileError(
            f"{file} is a torch.export program that cannot be loaded: {first_line(error)}{detail}",
            file,
        ) from None
    return LoadedModel(
        module,
        file,
        "torch.export program",
        "torch.export program, probed through its graph",
        _export_input_hint(program),
    )


@contextlib.contextmanager
def torch_logging_quiet() -> Iterator[None]:
    """torch logs (with tracebacks) what it tries while reading a file it cannot read; the loader
    reports the failure itself, in one line."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _export_input_hint(program: Any) -> InputHint:
    """The per-sample shape of the program's first input, if the program fixes it."""
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in user_inputs:
            continue
        value = node.meta.get("val")
        shape = getattr(value, "shape", None)
        if shape is None or len(shape) < 1:
            return UNKNOWN
        per_sample = tuple(shape[1:])
        if not all(isinstance(d, int) for d in per_sample):
            return UNKNOWN
        batch = shape[0] if isinstance(shape[0], int) else None
        return InputHint(
            tuple(int(d) for d in per_sample),
            "the program's example input",
            exact=True,
            batch=batch,
        )
    return UNKNOWN


def _load_torchscript(file: Path) -> LoadedModel:
    try:
        scripted = torch.jit.load(str(file), map_location="cpu")
    except Exception as error:
        raise CorruptModelFileError(
            f"{file} is a TorchScript archive that cannot be loaded: {first_line(error)}", file
        ) from None
    return LoadedModel(
        _ScriptedModel(scripted),
        file,
        "TorchScript archive",
        "TorchScript archive: the output only",
        hint_from_first_layer(scripted),
        output_only=True,
        notes=[OUTPUT_ONLY_REASON],
    )


class _ScriptedModel(nn.Module):
    """A plain Module around a TorchScript one, so the probe's hooks on the root can run."""

    def __init__(self, scripted: nn.Module) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, *args: Any) -> Any:
        return self.scripted(*args)
