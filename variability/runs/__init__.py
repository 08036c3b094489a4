"""Training runs: ``Monitor`` for any training loop, the run directory, the trainer.

docs/runs.md describes the run directory's format, the resume rule and the trainer.
"""

from variability.runs.events import Event, MonitorWarning
from variability.runs.monitor import Monitor
from variability.runs.run_dir import (
    FORMAT_VERSION,
    RunDirectory,
    RunDirError,
    RunSetup,
    read_metrics,
    read_records,
)
from variability.runs.trainer import TrainConfig, TrainResult, read_result, train

__all__ = [
    "FORMAT_VERSION",
    "Event",
    "Monitor",
    "MonitorWarning",
    "RunDirError",
    "RunDirectory",
    "RunSetup",
    "TrainConfig",
    "TrainResult",
    "read_metrics",
    "read_records",
    "read_result",
    "train",
]
