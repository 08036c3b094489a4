"""The architectures the toolkit compares: FC, LCW and Han, sized to equal parameter counts.

Importing this package registers ``Abs`` and ``HanLayer`` with the probe engine as activations
whose units are active where the pre-activation is not 0.
"""

from variability.arch.abs import Abs
from variability.arch.han import HanLayer
from variability.arch.lcw import LCWLinear, zero_sum_basis

__all__ = ["Abs", "HanLayer", "LCWLinear", "zero_sum_basis"]
