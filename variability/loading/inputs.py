"""The probe set: inputs read from a file, or generated at random with a fixed seed.

Files: ``.npy`` (read without pickle), ``.pt`` (a tensor, or a dict with an ``x`` entry, read with
``weights_only=True`` so no pickled code runs), ``.csv`` of numbers (one sample per row, an optional
header). Generated inputs are drawn in fixed chunks, each from its own seed, so the probe set does
not depend on the batch size and is never held in memory all at once.
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from variability.errors import first_line
from variability.loading.errors import InputsError, InputShapeError
from variability.loading.shapes import format_shape, show_shape

__all__ = ["DISTRIBUTIONS", "INPUT_FORMATS", "ProbeInputs", "generate_inputs", "read_inputs"]

INPUT_FORMATS = (".npy", ".pt", ".pth", ".csv")
DISTRIBUTIONS = {
    "normal": "standard normal",
    "uniform": "uniform on [-1, 1]",
    "tokens": "token ids drawn uniformly from the vocabulary",
}
CHUNK = 256
"""Generated inputs are drawn this many samples at a time, chunk k from seed (seed, k)."""


@dataclass(frozen=True)
class ProbeInputs:
    """A probe set: a tensor read from a file, or the recipe of generated inputs."""

    description: str
    samples: int
    sample_shape: tuple[int, ...]
    dtype: torch.dtype
    nonfinite: int = 0
    tensor: Tensor | None = None
    distribution: str | None = None
    seed: int | None = None
    vocab: int | None = None  # token ids are drawn below this (distribution "tokens")

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """The probe set in batches of ``batch_size`` (the last may be smaller)."""
        if self.tensor is not None:
            yield from self.tensor.split(batch_size)
        else:
            yield from _generated(self, batch_size)

    def head(self, count: int) -> Tensor:
        """The first ``count`` samples (fewer if the set is smaller)."""
        return next(self.batches(count))

    def to_dict(self) -> dict[str, object]:
        return {
            "description": self.description,
            "samples": self.samples,
            "sample_shape": list(self.sample_shape),
            "dtype": str(self.dtype).removeprefix("torch."),
            "nonfinite": self.nonfinite,
            "distribution": self.distribution,
            "seed": self.seed,
            "vocab": self.vocab,
        }


def _chunk_generator(seed: int, chunk: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, chunk]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _generated(inputs: ProbeInputs, batch_size: int) -> Iterator[Tensor]:
    assert inputs.seed is not None
    pending: list[Tensor] = []
    held = 0
    for k in range(math.ceil(inputs.samples / CHUNK)):
        rows = min(CHUNK, inputs.samples - k * CHUNK)
        generator = _chunk_generator(inputs.seed, k)
        shape = (rows, *inputs.sample_shape)
        if inputs.distribution == "tokens":
            assert inputs.vocab is not None
            chunk = torch.randint(0, inputs.vocab, shape, generator=generator)
        elif inputs.distribution == "uniform":
            chunk = torch.rand(shape, generator=generator) * 2 - 1
        else:
            chunk = torch.randn(shape, generator=generator)
        pending.append(chunk.to(inputs.dtype))
        held += rows
        while held >= batch_size:
            joined = torch.cat(pending)
            yield joined[:batch_size]
            rest = joined[batch_size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield torch.cat(pending)


def generate_inputs(
    sample_shape: tuple[int, ...],
    samples: int,
    *,
    distribution: str = "normal",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    vocab: int | None = None,
) -> ProbeInputs:
    """``samples`` random inputs of ``sample_shape``: standard normal, uniform on [-1, 1], or
    (``distribution="tokens"``) integer token ids drawn uniformly below ``vocab``."""
    if distribution not in DISTRIBUTIONS:
        raise InputsError(
            f"unknown distribution {distribution!r}: use {' or '.join(DISTRIBUTIONS)}"
        )
    if samples < 1:
        raise InputsError(f"--samples must be at least 1, got {samples}")
    if distribution == "tokens":
        if vocab is None or vocab < 1:
            raise InputsError("token-id inputs need the size of the model's vocabulary")
        return ProbeInputs(
            f"{samples} generated sequences of {sample_shape[-1]} token ids, drawn uniformly "
            f"below {vocab}, seed {seed}",
            samples,
            tuple(sample_shape),
            torch.int64,
            distribution=distribution,
            seed=seed,
            vocab=vocab,
        )
    return ProbeInputs(
        f"{samples} generated inputs of shape {show_shape(sample_shape)}, "
        f"{DISTRIBUTIONS[distribution]}, seed {seed}",
        samples,
        tuple(sample_shape),
        dtype,
        distribution=distribution,
        seed=seed,
    )


def read_inputs(
    path: str | Path,
    *,
    sample_shape: tuple[int, ...] | None = None,
    dtype: torch.dtype = torch.float32,
) -> ProbeInputs:
    """The probe set in ``path``, one sample per row (reshaped to ``sample_shape`` if given).

    Floating-point inputs are cast to ``dtype`` (the model's); integer inputs (token ids) stay
    integers. NaN and Inf values are kept and counted: the probe leaves them out of every figure.
    """
    file = Path(path)
    if not file.exists():
        raise InputsError(f"no inputs file at {file}")
    if file.is_dir():
        raise InputsError(f"{file} is a directory, not an inputs file")
    suffix = file.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise InputsError(
            f"{file}: unknown inputs format {suffix or '(no extension)'!r}; use .npy, .pt "
            "(a tensor or a dict with an 'x' entry) or .csv (numbers, one sample per row)"
        )
    if file.stat().st_size == 0:
        raise InputsError(f"inputs file {file} is empty")
    if suffix == ".npy":
        tensor = _read_npy(file)
    elif suffix == ".csv":
        tensor = _read_csv(file)
    else:
        tensor = _read_pt(file)
    return _as_probe_set(tensor, file, sample_shape, dtype)


def _read_npy(file: Path) -> Tensor:
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise InputsError(
                f"{file} holds Python objects, not numbers; it was not loaded, because "
                "unpickling runs code: save a numeric array"
            ) from None
        raise InputsError(f"{file} is not a readable .npy file ({first_line(error)})") from None
    except (OSError, EOFError) as error:
        raise InputsError(f"{file} is not a readable .npy file ({first_line(error)})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InputsError(f"{file} holds an array of {array.dtype}, not numbers")
    return torch.from_numpy(np.ascontiguousarray(array))


def _read_csv(file: Path) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about empty files; we say it ourselves
        try:
            array = np.loadtxt(file, delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError:
            try:  # a header row
                array = np.loadtxt(file, delimiter=",", ndmin=2, dtype=np.float64, skiprows=1)
            except ValueError as error:
                raise InputsError(
                    f"{file} is not a .csv of numbers ({first_line(error)})"
                ) from None
    return torch.from_numpy(array)


def _read_pt(file: Path) -> Tensor:
    try:
        value = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" in str(error).lower():
            raise InputsError(
                f"{file} holds pickled Python objects; it was not loaded, because unpickling "
                "runs code: save a tensor, or a dict with an 'x' tensor"
            ) from None
        raise InputsError(f"{file} is damaged ({first_line(error)})") from None
    except Exception as error:
        raise InputsError(f"{file} is not a readable PyTorch file ({first_line(error)})") from None
    if isinstance(value, Mapping) and isinstance(value.get("x"), Tensor):
        return value["x"]
    if isinstance(value, Tensor):
        return value
    what = (
        f"a dict with keys {', '.join(map(str, list(value)[:5]))}"
        if isinstance(value, Mapping)
        else f"a {type(value).__name__}"
    )
    raise InputsError(f"{file} holds {what}; expected a tensor or a dict with an 'x' tensor")


def _as_probe_set(
    tensor: Tensor, file: Path, sample_shape: tuple[int, ...] | None, dtype: torch.dtype
) -> ProbeInputs:
    if tensor.dim() == 0 or tensor.shape[0] == 0:
        raise InputsError(f"{file} holds no samples (shape {tuple(tensor.shape)})")
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(1)  # one number per sample
    if sample_shape is not None:
        per_sample = math.prod(tensor.shape[1:])
        if per_sample != math.prod(sample_shape):
            raise InputShapeError(
                f"{file} has samples of shape {show_shape(tensor.shape[1:])}, "
                f"{per_sample} values each, which cannot be reshaped to --input-shape "
                f"{format_shape(sample_shape)} ({math.prod(sample_shape)} values)"
            )
        tensor = tensor.reshape(tensor.shape[0], *sample_shape)
    if tensor.dtype == torch.bool:
        tensor = tensor.float()
    if tensor.is_floating_point():
        tensor = tensor.to(dtype)
    tensor = tensor.contiguous()
    nonfinite = int((~torch.isfinite(tensor)).sum()) if tensor.is_floating_point() else 0
    shape = tuple(int(d) for d in tensor.shape[1:])
    text = f"{file.name}: {tensor.shape[0]} samples of shape {show_shape(shape)}"
    if nonfinite:
        text += f", {nonfinite} NaN/Inf values"
    return ProbeInputs(text, int(tensor.shape[0]), shape, tensor.dtype, nonfinite, tensor)
