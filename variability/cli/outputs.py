"""Writing a command's machine-readable output: to a file (atomically) or to stdout (``-``)."""

from __future__ import annotations

import sys
from pathlib import Path

from variability.atomic import atomic_file
from variability.errors import UserError
from variability.folders import new_folders, why_not_written

__all__ = ["STDOUT", "write_output"]

STDOUT = "-"


def write_output(target: str, text: str) -> Path | None:
    """Write ``text`` to ``target`` (``-``: stdout). A file is written under a temporary name and
    renamed, so a reader never sees half of it and an earlier file survives a failed write."""
    if target == STDOUT:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return None
    path = Path(target)
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name to write to")
    try:
        with new_folders(path.parent), atomic_file(path) as stream:
            stream.write(text)
    except OSError as error:
        raise UserError(f"cannot write {path}: {why_not_written(error, path)}") from None
    return path
