"""variability: where signal dies in a PyTorch network, and which architectures keep it alive."""

from variability.probes import (
    SCHEMA_VERSION,
    Activation,
    LinePieces,
    NoProbeSitesError,
    Probe,
    ProbeError,
    ProbeResults,
    ProbeState,
    SiteResult,
    Thresholds,
    TraceError,
    pieces_per_line,
    probe_model,
    register_activation,
    register_function,
    v3,
)

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "Activation",
    "LinePieces",
    "NoProbeSitesError",
    "Probe",
    "ProbeError",
    "ProbeResults",
    "ProbeState",
    "SiteResult",
    "Thresholds",
    "TraceError",
    "__version__",
    "pieces_per_line",
    "probe_model",
    "register_activation",
    "register_function",
    "v3",
]
