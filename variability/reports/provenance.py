"""What produced a report: command line, versions, device and time, for every report's footer."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from typing import Any

from variability.versions import versions


def command_line() -> str:
    """The command as typed (argv), shell-quoted so it can be pasted back."""
    program = "variability" if sys.argv and sys.argv[0].endswith("variability") else sys.argv[0]
    return " ".join(shlex.quote(a) for a in [program, *sys.argv[1:]])


def provenance(**extra: Any) -> dict[str, str]:
    """Versions, time and anything the caller adds (device, seeds, inputs), as strings."""
    info = {"written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), **versions()}
    info.update({k: str(v) for k, v in extra.items() if v is not None})
    return info
