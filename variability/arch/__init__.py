"""The architectures the toolkit compares: FC, LCW and Han, sized to equal parameter counts.

Importing this package registers ``Abs`` and ``HanLayer`` with the probe engine as activations
whose units are active where the pre-activation is not 0.
"""

from variability.arch.abs import Abs
from variability.arch.builders import (
    DEFAULT_ACTIVATION,
    DEFAULT_INIT,
    Network,
    build_model,
    rebuild,
)
from variability.arch.errors import (
    BudgetError,
    CorruptModelFileError,
    ModelFileError,
    ModelFileNotFoundError,
    NotAModelFileError,
    PickledObjectsError,
    SpecError,
)
from variability.arch.files import FORMAT, FORMAT_VERSION, load_model, read_model_file, save_model
from variability.arch.han import HanLayer
from variability.arch.init import ACTIVATIONS, INITS, activation_gain
from variability.arch.lcw import LCWLinear, zero_sum_basis
from variability.arch.params import (
    DEFAULT_TOLERANCE,
    FAMILIES,
    count_params,
    min_width,
    param_count,
    solve_width,
    solve_widths,
)

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_ACTIVATION",
    "DEFAULT_INIT",
    "DEFAULT_TOLERANCE",
    "FAMILIES",
    "FORMAT",
    "FORMAT_VERSION",
    "INITS",
    "Abs",
    "BudgetError",
    "CorruptModelFileError",
    "HanLayer",
    "LCWLinear",
    "ModelFileError",
    "ModelFileNotFoundError",
    "Network",
    "NotAModelFileError",
    "PickledObjectsError",
    "SpecError",
    "activation_gain",
    "build_model",
    "count_params",
    "load_model",
    "min_width",
    "param_count",
    "read_model_file",
    "rebuild",
    "save_model",
    "solve_width",
    "solve_widths",
    "zero_sum_basis",
]
