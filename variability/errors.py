"""The error a user can cause and fix (a missing file, a bad option): the CLI prints it in one line.

``variability.probes`` keeps its own ``ProbeError`` (it imports nothing of the project's); the
command line treats both alike.
"""


class UserError(ValueError):
    """Bad input or usage: the message says what is wrong and, where it can, what to do."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message (or its type's name), for one-line reports."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:limit]
