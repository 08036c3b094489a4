"""Consoles, progress bars and the one-line error convention shared by every command.

Exit codes: 0 fine, 2 bad input or usage, 3 a ``--fail-on`` condition met.
"""

from __future__ import annotations

import functools
import sys
import time
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

LOG_EVERY = 10.0
"""Seconds between two progress lines in a log."""

F = TypeVar("F", bound=Callable[..., Any])


LOG_WIDTH = 1000
"""Columns of a console that is not a terminal: a line is as long as it needs to be."""


def stdout() -> Console:
    return _full_width(Console(file=sys.stdout, soft_wrap=True))


def stderr() -> Console:
    return _full_width(Console(file=sys.stderr, soft_wrap=True, highlight=False))


def _full_width(console: Console) -> Console:
    """In a pipe or a log there is no screen to fit: tables are printed at full width, their
    rows on one line each, with no name or status wrapped or cut (a terminal keeps its own
    width)."""
    if not console.is_terminal:
        console.width = LOG_WIDTH
    return console


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
    total: int | None,
    description: str,
    *,
    quiet: bool = False,
    unit: str = "",
    log_every: float = LOG_EVERY,
) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr; yields ``advance(n=1, **fields)``.

    Where stderr is not a terminal (a log, CI), a bar would print nothing until the end, so
    plain lines are printed instead: one at most every ``log_every`` seconds of work (0: one
    for every advance, as ``compare`` does for every finished model). ``quiet`` prints nothing.
    """
    console = stderr()
    if quiet:
        yield _ignore
        return
    if not console.is_terminal:
        yield _PlainLines(console, total, description, unit, log_every).advance
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total else TaskProgressColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields: Any) -> None:
            bar.update(task, advance=n, status=_status(fields))

        yield advance


def _ignore(n: int = 1, **fields: Any) -> None:
    """Progress nobody is shown."""


def _status(fields: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v}" for k, v in fields.items())


class _PlainLines:
    """Progress as lines for a log: ``models 3/18 after 21 s  training fc-d8-s1 400/1000``."""

    def __init__(
        self, console: Console, total: int | None, description: str, unit: str, every: float
    ) -> None:
        self.console, self.total, self.every = console, total, every
        self.label = description
        self.unit = "" if unit == description else unit  # "models 3/18", not "models 3/18 models"
        self.done = 0
        self.started = self.printed = time.perf_counter()

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.done += n
        now = time.perf_counter()
        if n <= 0 or now - self.printed < self.every:
            return
        self.printed = now
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "")
        unit = f" {self.unit}" if self.unit else ""
        status = _status(fields)
        line = f"{self.label} {count}{unit} after {now - self.started:.0f} s"
        self.console.print(line + (f"  {status}" if status else ""), highlight=False, markup=False)
