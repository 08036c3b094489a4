"""What a result was made with: package versions, platform, device, for run files and reports."""

from __future__ import annotations

import platform
from typing import Any

VERSION = "0.1.0"
"""This package's version (``variability.__version__``; keep pyproject.toml's in step)."""


def versions() -> dict[str, str]:
    import numpy
    import torch

    return {
        "variability": VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def environment(device: Any = None) -> dict[str, Any]:
    """``versions()`` plus the device and torch's thread count, for a run's ``run.json``."""
    import torch

    return {**versions(), "device": str(device or "cpu"), "threads": torch.get_num_threads()}
