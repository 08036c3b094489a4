"""Errors a user can cause when handing us a model or a probe set: one sentence each.

Model file problems reuse ``variability.arch``'s ModelFileError family (missing, directory, empty,
truncated, not a model); the ones below are about what only this loader reads.
"""

from __future__ import annotations

from variability.arch.errors import ModelFileError
from variability.errors import UserError

__all__ = [
    "ArchError",
    "InputShapeError",
    "InputsError",
    "ModelFaultError",
    "UntrustedPickleError",
]


class UntrustedPickleError(ModelFileError):
    """A pickle (a whole pickled module...) refused because ``trust_pickle`` was not given.

    Raised before anything in the file is unpickled, so no code from the file has run.
    """


class ArchError(UserError):
    """An ``--arch`` factory that cannot be imported, called, or whose model does not fit the
    state dict (the message names the keys and shapes that differ)."""


class InputsError(UserError):
    """A probe set that cannot be read or generated: missing file, unknown format, no rows."""


class InputShapeError(InputsError):
    """Inputs whose shape does not fit the model; the message gives the expected and given shape."""


class ModelFaultError(UserError):
    """The user's model raised, or called ``exit``, while it ran on the probe set.

    The message names where (the first check, or batch k of n) and the first line of what the
    model raised; ``fault`` keeps the original exception, for a traceback on request.
    """

    def __init__(self, message: str, fault: BaseException) -> None:
        super().__init__(message)
        self.fault = fault
