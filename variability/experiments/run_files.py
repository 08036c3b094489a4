"""A job's run directory carried between machines, for engines whose workers may not share the
driver's filesystem (Ray across nodes).

- ``same_files(mark)``: does this machine see the driver's files? The driver leaves a file with
  a fresh random token in the folder it writes (``leave_mark``); a worker that reads the same
  token at the same path shares its filesystem (the same machine, NFS, a cluster file system),
  and writes its run directory in place. A worker that does not is sent the directory's files
  (to resume from its checkpoints), writes a scratch copy, and returns its files with the result.
- ``pack`` and ``unpack``: a directory as ``{relative path: bytes}`` and back.
- ``bring_home``: the driver writes a returned directory in place of its own copy, whole: the
  files go to a temporary sibling first and the directories are then swapped by renames, so a
  kill leaves either the old directory or the new one (plus a hidden leftover that the next
  ``bring_home`` of that directory removes), never a mixture.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARK", "Mark", "bring_home", "leave_mark", "pack", "same_files", "unpack"]

MARK = ".variability-shared-check"
"""The file a driver leaves in a folder it writes; workers read it to tell a shared filesystem."""

Files = dict[str, bytes]


@dataclass(frozen=True)
class Mark:
    """A token left at ``path`` (absolute) by the driver."""

    path: str
    token: str


def leave_mark(folder: Path) -> Mark:
    """Leave a fresh token in ``folder`` (created if needed); the driver removes it at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    mark = Mark(str((folder / MARK).resolve()), secrets.token_hex(16))
    Path(mark.path).write_text(mark.token, encoding="ascii")
    return mark


def same_files(mark: Mark) -> bool:
    """Whether this machine reads the driver's token at the driver's path."""
    try:
        return Path(mark.path).read_text(encoding="ascii") == mark.token
    except (OSError, UnicodeDecodeError):
        return False


def pack(directory: Path) -> Files:
    """Every file under ``directory`` by its relative POSIX path ({} if it does not exist)."""
    if not directory.is_dir():
        return {}
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def unpack(files: Files, directory: Path) -> None:
    """Write ``files`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def bring_home(files: Files, directory: Path) -> None:
    """Make ``directory`` hold exactly ``files`` (see the module's docstring)."""
    parent, name = directory.parent, directory.name
    parent.mkdir(parents=True, exist_ok=True)
    for leftover in parent.glob(f".{name}.incoming-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    incoming = parent / f".{name}.incoming-{os.getpid()}"
    old = parent / f".{name}.incoming-{os.getpid()}-old"
    unpack(files, incoming)
    if directory.exists():
        directory.rename(old)
    incoming.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
