"""The errors a user can cause and fix, under one root.

``VariabilityError`` is the root of every error the toolkit raises on purpose: a bad option, a
missing or unreadable file, a budget a family cannot meet, an unknown task, an unusable run
directory. Each says in one sentence what is wrong and, where it can, what to do. It is a
``ValueError``, so code that caught ValueError before still does. The subclasses live with what
raises them (``arch.errors``, ``tasks.task``, ``loading.errors``, ``runs.run_dir``...);
``UserError`` is for bad usage that no more specific class names.

``variability.probes`` keeps its own root, ``ProbeError`` (also a ValueError): the probe engine
imports nothing of the project's, so that it works on any model. ``USER_ERRORS`` holds both
roots: it is what the command line catches to print one line and exit with code 2.

Every error pickles with its message and attributes, whatever its ``__init__`` takes, so an
error raised in a worker process comes back to the parent as itself (a ``BudgetError`` keeps its
family, depth and budget).
"""

from __future__ import annotations

from typing import Any

from variability.probes.errors import ProbeError


class VariabilityError(ValueError):
    """Something a user can fix: the message says what is wrong and, where it can, what to do."""

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException pickles as ``type(self)(*self.args)``, which fails for subclasses whose
        # __init__ takes other arguments (keyword-only fields, a path): rebuild without __init__.
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(kind: type[VariabilityError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    # The __new__ of the built-in class that lays the instance out (OSError for an error that is
    # also a FileNotFoundError): ``kind.__new__`` would find ValueError's first, which refuses.
    layout: type = kind
    while "__new__" not in vars(layout):
        layout = layout.__base__ or BaseException
    error = layout.__new__(kind, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class UserError(VariabilityError):
    """Bad input or usage that no more specific error names (an option, a device, a folder)."""


USER_ERRORS: tuple[type[Exception], ...] = (VariabilityError, ProbeError)
"""The errors a user can cause: the project's root and the probe engine's."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message (or its type's name), for one-line reports."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:limit]


__all__ = ["USER_ERRORS", "UserError", "VariabilityError", "first_line"]
