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

# Imported after __version__: model files record the version that wrote them. Importing the
# architectures also registers Abs and Han layers as probe sites.
from variability.arch import (
    Abs,
    BudgetError,
    HanLayer,
    LCWLinear,
    ModelFileError,
    build_model,
    count_params,
    load_model,
    save_model,
    solve_width,
    solve_widths,
)
from variability.remedy import Reinitialization, RemedyError, reinitialize
from variability.runs import Monitor, MonitorWarning, read_metrics
from variability.tasks import Task, TaskError, load_task

__all__ = [
    "SCHEMA_VERSION",
    "Abs",
    "Activation",
    "BudgetError",
    "HanLayer",
    "LCWLinear",
    "LinePieces",
    "ModelFileError",
    "Monitor",
    "MonitorWarning",
    "NoProbeSitesError",
    "Probe",
    "ProbeError",
    "ProbeResults",
    "ProbeState",
    "Reinitialization",
    "RemedyError",
    "SiteResult",
    "Task",
    "TaskError",
    "Thresholds",
    "TraceError",
    "__version__",
    "build_model",
    "count_params",
    "load_model",
    "load_task",
    "pieces_per_line",
    "probe_model",
    "read_metrics",
    "register_activation",
    "register_function",
    "reinitialize",
    "save_model",
    "solve_width",
    "solve_widths",
    "v3",
]
