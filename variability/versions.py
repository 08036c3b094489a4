"""What a result was made with: package versions, platform, device, for run files and reports."""

from __future__ import annotations

import platform
from typing import Any


def versions() -> dict[str, str]:
    import numpy
    import torch

    from variability import __version__

    return {
        "variability": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def environment(device: Any = None) -> dict[str, Any]:
    """``versions()`` plus the device and torch's thread count, for a run's ``run.json``."""
    import torch

    return {**versions(), "device": str(device or "cpu"), "threads": torch.get_num_threads()}
