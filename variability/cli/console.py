"""Consoles, progress bars and the one-line error convention shared by every command.

Exit codes: 0 fine, 2 bad input or usage, 3 a ``--fail-on`` condition met.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from variability.errors import USER_ERRORS

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONDITION = 3

F = TypeVar("F", bound=Callable[..., Any])


def stdout() -> Console:
    return Console(file=sys.stdout, soft_wrap=True)


def stderr() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on stderr; return the Exit to raise."""
    stderr().print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code)


def reports_user_errors(command: F) -> F:
    """Turn a user error raised by a command into one line on stderr and exit code 2.

    User errors are ``variability.errors.USER_ERRORS``: the project's root, ``VariabilityError``,
    and the probe engine's own, ``ProbeError``.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            raise fail(_one_line(error)) from None

    return wrapper  # type: ignore[return-value]


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


@contextmanager
def progress_bar(
    total: int | None, description: str, *, quiet: bool = False, unit: str = ""
) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr; yields ``advance(n=1, **fields)``.

    Silent with ``quiet`` and when stderr is not a terminal (CI logs get no redraws).
    """
    console = stderr()
    disable = quiet or not console.is_terminal
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total else TaskProgressColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    with Progress(*columns, console=console, disable=disable, transient=False) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields: Any) -> None:
            status = "  ".join(f"{k} {v}" for k, v in fields.items())
            bar.update(task, advance=n, status=status)

        yield advance
