"""The ``variability`` console script: quick checks first, then the app and its heavy imports.

Importing the commands means importing torch, pandas, matplotlib and seaborn: seconds. A file
named on the command line that does not exist is an error the command line alone can tell, so
it is told before those imports, in the same words and with the same exit code (2) as the
commands' own checks, which stay in place: this is only the fast path.

Ctrl-C ends a command with exit code 130, and only the first Ctrl-C counts: every command exits
on it, and a second one, arriving while the command stops its workers, prints its last line or
the interpreter cleans up, would cut that short (no line saying how to resume, or "leaked
semaphore" warnings from a worker pool's clean-up).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["VALUE_OPTIONS", "main", "quick_check"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "probe": frozenset(
        {
            "--arch",
            "--arch-kwargs",
            "--inputs",
            "--input-shape",
            "--dist",
            "--samples",
            "--seed",
            "--batch-size",
            "--device",
            "--sites",
            "--tau",
            "--collapse-level",
            "--collapsing-level",
            "--json",
            "--csv",
            "--report",
            "--fail-on",
            "--seq-len",
            "--constant-level",
        }
    ),
    "report": frozenset({"--out"}),
}
"""Options of the checked commands that take a value (tests/cli/test_quick_checks.py keeps this
in step with the commands' own declarations)."""


def _split(args: Sequence[str], takes_value: frozenset[str]) -> tuple[list[str], dict[str, str]]:
    """(positional arguments, the values of options) as click would read them; ``--help``
    anywhere leaves nothing to check."""
    positional: list[str] = []
    values: dict[str, str] = {}
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            positional.extend(tokens)
            break
        if token in ("--help", "-h"):
            return [], {}
        if token.startswith("-") and token != "-":
            name, equals, value = token.partition("=")
            if name in takes_value:
                values[name] = value if equals else next(tokens, "")
            continue
        positional.append(token)
    return positional, values


def quick_check(argv: Sequence[str]) -> str | None:
    """The message of an error the command line alone shows (a missing file), or None."""
    if not argv or argv[0] not in VALUE_OPTIONS:
        return None
    command = argv[0]
    positional, values = _split(argv[1:], VALUE_OPTIONS[command])
    if len(positional) != 1:
        return None  # missing or extra arguments: the app says so
    target = Path(positional[0])
    if command == "probe":
        if not target.exists():
            return f"no model file at {target}"
        inputs = values.get("--inputs")
        if inputs and not Path(inputs).exists():
            return f"no inputs file at {inputs}"
    elif command == "report" and not target.exists():
        return f"{target} is not a run directory (no such folder)"
    return None


def _fail(message: str) -> None:
    """``error: message`` on stderr, as ``variability.cli.console.fail`` prints it."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=sys.stderr, soft_wrap=True, highlight=False)
    console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)


class _FirstInterruptOnly:
    """A SIGINT handler that raises ``KeyboardInterrupt`` once and ignores every later SIGINT,
    even where code that set its own handler for a while (a worker pool starting processes with
    SIGINT ignored) puts this one back."""

    def __init__(self) -> None:
        self.interrupted = False

    def __call__(self, signum: int, frame: object) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


def _first_interrupt_only() -> Any:
    """Install ``_FirstInterruptOnly`` in place of Python's own handler; return what to put back
    (None: nothing was changed)."""
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        return signal.signal(signal.SIGINT, _FirstInterruptOnly())
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv``: the arguments, default ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    message = quick_check(args)
    if message is not None:
        _fail(message)
        sys.exit(EXIT_USAGE)
    previous = _first_interrupt_only()
    try:
        from variability.cli.app import app

        app(args=args, prog_name="variability")
    except KeyboardInterrupt:  # while the commands are imported
        previous = None
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as done:
        if done.code == EXIT_INTERRUPTED:
            previous = None  # the interpreter's clean-up, too, runs with Ctrl-C ignored
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise
    finally:
        if previous is not None:  # called from Python (tests): its own handler back
            signal.signal(signal.SIGINT, previous)
