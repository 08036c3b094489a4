"""Remedies: from the diagnosis (where a network's sites die) to a fix of its initial weights.

``reinitialize(model, inputs, method="lsuv")`` visits the probe sites in depth order and, for
each, rescales and shifts the layer that made its input, so that every site receives a
pre-activation of the target second moment with the target fraction of it above 0. The
methods (LSUV, AutoInit-style analytic tracking, LCW centring) are stated in docs/figures.md.
"""

from variability.remedy.outcome import Reinitialization, RemedyError, SiteOutcome
from variability.remedy.reinit import METHODS, SHARED_MEAN_LEVEL, reinitialize

__all__ = [
    "METHODS",
    "SHARED_MEAN_LEVEL",
    "Reinitialization",
    "RemedyError",
    "SiteOutcome",
    "reinitialize",
]
