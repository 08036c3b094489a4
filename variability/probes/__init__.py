"""Probe engine: find the probe sites of any PyTorch model and measure them.

This package imports nothing else of the project's, so it works on any model.
"""

from variability.probes.activations import (
    Activation,
    activation_for_module,
    register_activation,
    register_function,
)
from variability.probes.errors import NoProbeSitesError, ProbeError, TraceError
from variability.probes.landscape import LinePieces, pieces_per_line, v3
from variability.probes.probe import Probe, probe_model
from variability.probes.results import SCHEMA_VERSION, ProbeResults, SiteResult, UnprobedCall
from variability.probes.state import ProbeState
from variability.probes.thresholds import DEAD_LEVEL, Status, Thresholds, too_many_dead

__all__ = [
    "DEAD_LEVEL",
    "SCHEMA_VERSION",
    "Activation",
    "LinePieces",
    "NoProbeSitesError",
    "Probe",
    "ProbeError",
    "ProbeResults",
    "ProbeState",
    "SiteResult",
    "Status",
    "Thresholds",
    "TraceError",
    "UnprobedCall",
    "activation_for_module",
    "pieces_per_line",
    "probe_model",
    "register_activation",
    "register_function",
    "too_many_dead",
    "v3",
]
