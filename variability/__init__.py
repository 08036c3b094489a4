"""variability: where signal dies in a PyTorch network, and which architectures keep it alive.

This module is the public API, re-exported. The package is layered, and imports point one way
(tests/test_layers.py checks it, function-level imports included, and that there is no cycle):

    cli -> variability (this API) -> experiments -> runs, reports, loading -> arch, tasks
        -> foundation (errors, atomic, devices, versions) -> probes

``probes`` imports nothing of the project's, so that it works on any model.
"""

# Importing the architectures also registers Abs and Han layers as probe sites.
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
from variability.runs import Monitor, MonitorWarning, read_metrics
from variability.tasks import Task, TaskError, load_task
from variability.versions import VERSION as __version__

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
    "save_model",
    "solve_width",
    "solve_widths",
    "v3",
]
