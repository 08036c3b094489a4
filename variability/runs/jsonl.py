"""Reading a JSON Lines file that a kill or a torn write may have damaged.

Every line that decodes as UTF-8 and parses as a JSON object is a record. Any other line is
skipped and remembered by its number, so that a command can say what it left out: a line cut
short by a kill, or bytes that are not UTF-8 (a write torn on some file systems leaves them).
One bad line never hides the records around it, and never ends a command in a traceback.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["JsonLines", "read_json_lines"]


@dataclass
class JsonLines:
    """The records of a file, and the numbers (from 1) of the lines that were not records."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    def note(self) -> str | None:
        """One sentence on the skipped lines, or None when every line was a record."""
        if not self.skipped:
            return None
        shown = ", ".join(map(str, self.skipped[:5]))
        more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        lines = "line" if len(self.skipped) == 1 else "lines"
        return (
            f"skipped {lines} {shown}{more} of {self.path}: not a readable record (torn by a "
            "kill, or not UTF-8)"
        )


def read_json_lines(path: str | os.PathLike[str]) -> JsonLines:
    """The JSON objects of ``path``, one per line, in file order (no file: none)."""
    result = JsonLines(Path(path))
    if not result.path.exists():
        return result
    with result.path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if isinstance(record, dict):
                result.records.append(record)
            else:
                result.skipped.append(number)
    return result
