"""variability: where signal dies in a PyTorch network, and which architectures keep it alive.

This module is the public API, re-exported. The package is layered, and imports point one way
(tests/test_layers.py checks it, function-level imports included, and that there is no cycle):

    cli -> variability (this API) -> experiments -> runs, reports, loading, remedy -> arch, tasks
        -> foundation (errors, atomic, devices, folders, versions) -> probes

``probes`` imports nothing of the project's, so that it works on any model.

The public names below are imported when first used (PEP 562), not when the package is: the
command line checks its arguments before it pays seconds for torch, pandas and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from variability.versions import VERSION as __version__

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
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
            "pieces_per_line",
            "probe_model",
            "register_activation",
            "register_function",
            "v3",
        ),
        "variability.probes",
    ),
    # Importing the architectures also registers Abs and Han layers as probe sites.
    **dict.fromkeys(
        (
            "Abs",
            "BudgetError",
            "HanLayer",
            "LCWLinear",
            "ModelFileError",
            "build_model",
            "count_params",
            "load_model",
            "save_model",
            "solve_width",
            "solve_widths",
        ),
        "variability.arch",
    ),
    **dict.fromkeys(("Monitor", "MonitorWarning", "read_metrics"), "variability.runs"),
    **dict.fromkeys(("Reinitialization", "RemedyError", "reinitialize"), "variability.remedy"),
    **dict.fromkeys(("Task", "TaskError", "load_task"), "variability.tasks"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None and name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module is None:  # a subpackage (``variability.arch``), as an eager import made them
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
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
        Status,
        Thresholds,
        TraceError,
        pieces_per_line,
        probe_model,
        register_activation,
        register_function,
        v3,
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
    "Status",
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
