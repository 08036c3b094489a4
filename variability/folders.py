"""Output folders: made when a write needs them, removed again when the write fails, and the
reason a write failed said in words (a read-only disk, a full disk, a file where a folder goes).

A failed write should leave the disk as it found it: no empty folders, no half reports.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["new_folders", "why_not_written"]


@contextlib.contextmanager
def new_folders(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Create ``folder`` and its missing parents; if the block fails, remove the ones made here."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException:
        for made in missing:  # innermost first; a folder something else filled stays
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def why_not_written(error: OSError, path: str | os.PathLike[str]) -> str:
    """A few words on why writing ``path`` failed: the system's reason, or the file in the way."""
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        for ancestor in Path(path).parents:
            if ancestor.exists() and not ancestor.is_dir():
                return f"{ancestor} is a file, not a folder"
    return error.strerror or type(error).__name__
