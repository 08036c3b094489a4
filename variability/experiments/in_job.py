"""What a running job may ask of the engine that runs it, whichever engine that is.

Two things, so that a job's code reads the same in this process, in a local worker and on a Ray
worker of another machine:

- ``job_dir(path)``: where to write the directory the job was submitted as writing. It is
  ``path`` itself wherever the driver's files are at hand (this process, a local worker, a Ray
  worker on a shared filesystem); on a Ray worker without them it is a scratch copy, whose files
  go back with the job's result and are written by the driver (``run_files``).
- ``tell(payload)``: a progress message for the driver (a training step, say), delivered there
  as ``on_message(job name, payload)``; best effort, and nothing when no one listens.

The engine sets the context around each job with ``running``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Moved", "job_dir", "job_name", "running", "tell"]

Tell = Callable[[str, Any], None]


@dataclass(frozen=True)
class Moved:
    """A job's directory written somewhere else: ``home`` (absolute, on the driver, whose
    working directory is ``cwd``) is written at ``copy`` on this machine."""

    cwd: Path
    home: Path
    copy: Path


@dataclass(frozen=True)
class _Job:
    name: str
    tell: Tell | None
    moved: Moved | None


_stack: list[_Job] = []


@contextlib.contextmanager
def running(name: str, tell: Tell | None = None, moved: Moved | None = None) -> Iterator[None]:
    """The context of one job, for the block: its name, where its messages go, where it writes."""
    _stack.append(_Job(name, tell, moved))
    try:
        yield
    finally:
        _stack.pop()


def job_name() -> str | None:
    """The running job's name (None outside a job)."""
    return _stack[-1].name if _stack else None


def tell(payload: Any) -> None:
    """Send ``payload`` to the driver's ``on_message`` (nothing outside a job, or unheard)."""
    if _stack and _stack[-1].tell is not None:
        _stack[-1].tell(_stack[-1].name, payload)


def job_dir(path: str | os.PathLike[str]) -> Path:
    """Where the running job writes ``path``: itself, or its copy on this machine (see above)."""
    path = Path(path)
    moved = _stack[-1].moved if _stack else None
    if moved is None:
        return path
    absolute = Path(os.path.normpath(moved.cwd / path))  # an absolute path stays itself
    try:
        inside = absolute.relative_to(moved.home)
    except ValueError:
        return path
    return moved.copy / inside
