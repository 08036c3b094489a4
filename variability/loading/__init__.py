"""Reading what users hand us: model files in every accepted format, and probe sets.

Usable from Python as well as behind ``variability probe``::

    from variability.loading import load_user_model, read_inputs
    model = load_user_model("model.pt2")
"""

from variability.loading.dispatch import load_user_model
from variability.loading.errors import (
    ArchError,
    InputsError,
    InputShapeError,
    ModelFaultError,
    UntrustedPickleError,
)
from variability.loading.factory import build_from_factory, fit_state_dict, parse_arch_kwargs
from variability.loading.fit import batch_size_for, check_inputs_fit
from variability.loading.formats import FileKind, sniff_model_file
from variability.loading.inputs import (
    DISTRIBUTIONS,
    INPUT_FORMATS,
    ProbeInputs,
    generate_inputs,
    read_inputs,
)
from variability.loading.models import OUTPUT_ONLY_REASON, LoadedModel
from variability.loading.shapes import InputHint, format_shape, parse_shape, show_shape

__all__ = [
    "DISTRIBUTIONS",
    "INPUT_FORMATS",
    "OUTPUT_ONLY_REASON",
    "ArchError",
    "FileKind",
    "InputHint",
    "InputShapeError",
    "InputsError",
    "LoadedModel",
    "ModelFaultError",
    "ProbeInputs",
    "UntrustedPickleError",
    "batch_size_for",
    "build_from_factory",
    "check_inputs_fit",
    "fit_state_dict",
    "format_shape",
    "generate_inputs",
    "load_user_model",
    "parse_arch_kwargs",
    "parse_shape",
    "read_inputs",
    "show_shape",
    "sniff_model_file",
]
