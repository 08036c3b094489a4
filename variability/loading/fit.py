"""Do the inputs fit the model? Checked before probing, so a mismatch is one clear message.

Where the model file records its input shape, inputs of another shape are refused without
running the model; otherwise the model runs on a couple of samples and its complaint is reported
with the shapes involved: as a wrong shape only when the shape is the cause (the model takes
inputs of the shape it expects), else as a fault of the model.
"""

from __future__ import annotations

import torch

from variability.errors import first_line
from variability.loading.errors import InputShapeError
from variability.loading.faults import FAULTS, model_fault
from variability.loading.inputs import ProbeInputs
from variability.loading.models import LoadedModel
from variability.loading.shapes import format_shape, show_shape
from variability.probes.evaluation import set_mode

__all__ = ["batch_size_for", "check_inputs_fit"]


def batch_size_for(model: LoadedModel, inputs: ProbeInputs, requested: int) -> int:
    """``requested``, unless the model only takes batches of one fixed size."""
    if requested < 1:
        raise InputShapeError(f"--batch-size must be at least 1, got {requested}")
    fixed = model.input_hint.batch
    if fixed is None or fixed == requested:
        return requested
    if inputs.samples % fixed:
        raise InputShapeError(
            f"{model.path} takes batches of exactly {fixed} inputs (it was exported without a "
            f"dynamic batch dimension), so the probe set needs a multiple of {fixed} samples, "
            f"not {inputs.samples}; or export it with a dynamic batch dimension "
            "(dynamic_shapes with torch.export.Dim)"
        )
    return fixed


def check_inputs_fit(
    model: LoadedModel, inputs: ProbeInputs, device: torch.device | str = "cpu"
) -> None:
    """Raise InputShapeError, naming the expected and the given shape, if the model cannot
    take the inputs; ModelFaultError if it fails on them for another reason."""
    hint = model.input_hint
    given = show_shape(inputs.sample_shape)
    if hint.exact and hint.shape is not None and tuple(inputs.sample_shape) != hint.shape:
        fix = (
            f"pass --input-shape {format_shape(hint.shape)} or leave it out"
            if inputs.tensor is None
            else "give inputs of that shape"
        )
        raise InputShapeError(
            f"{model.path.name} takes inputs of shape {show_shape(hint.shape)} per sample "
            f"({hint.source}), but the inputs have shape {given}: {fix}"
        )
    sample = inputs.head(hint.batch or 2)
    error = _fault_on(model, sample.to(device))
    if error is None:
        return
    where = f"a first check, {len(sample)} inputs of shape {given} per sample"
    if isinstance(error, SystemExit) or not _shape_is_the_cause(model, sample, device):
        raise model_fault(model.path.name, where, error)
    expected = ""
    if hint.shape is not None:
        expected = f"; it expects {show_shape(hint.shape)} ({hint.source})"
    elif hint.source:
        expected = f"; {hint.source}"
    raise InputShapeError(
        f"{model.path.name} cannot run on inputs of shape {given} per sample "
        f"({str(inputs.dtype).removeprefix('torch.')}){expected}. The model said: "
        f"{type(error).__name__}: {first_line(error)}"
    )


def _fault_on(model: LoadedModel, batch: torch.Tensor) -> BaseException | None:
    """What the model raises on ``batch`` (eval mode, no gradients; its mode restored)."""
    module = model.module
    training = module.training
    try:
        set_mode(module, False)
        with torch.no_grad():
            module(batch)
    except FAULTS as error:
        return error
    finally:
        set_mode(module, training)
    return None


def _shape_is_the_cause(
    model: LoadedModel, sample: torch.Tensor, device: torch.device | str
) -> bool:
    """Whether the shape, not the model, is to blame for a failed first check.

    Not when the inputs have the shape the model asks for; yes when inputs of that shape (zeros)
    go through; when the model does not tell its shape, the shape stays the likely suspect.
    """
    expected = model.input_hint.shape
    if expected is None:
        return True
    if tuple(sample.shape[1:]) == expected:
        return False
    zeros = torch.zeros((len(sample), *expected), dtype=sample.dtype, device=device)
    return _fault_on(model, zeros) is None
