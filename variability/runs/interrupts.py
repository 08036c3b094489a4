"""Ctrl-C with worker processes: one clean stop, led by the command's own process.

Ctrl-C in a terminal reaches every process of the foreground group; ``kill -INT`` reaches the
command's process alone. Either way the command's process stops its workers itself:

- workers never take SIGINT (they are spawned with it ignored, and Python keeps an inherited
  ignore): no KeyboardInterrupt traceback from a worker that was still importing torch;
- to stop them, the command's process sends SIGTERM: a worker in the middle of a task raises
  KeyboardInterrupt there, so the task stops between steps and its atomic writes clean up
  after themselves; an idle worker just exits. Any that linger are killed;
- a second Ctrl-C must not cut the command's exit short: the interpreter's last clean-up
  unlinks the pool's named semaphores, and an interrupted one leaves "leaked semaphore"
  warnings behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = [
    "ignore_further_interrupts",
    "ignore_interrupts",
    "stop_workers",
    "task_in_worker",
    "worker_stops_on_sigterm",
]

STOP_SECONDS = 20.0
"""How long stopped workers get to end their step and clean up before they are killed."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def ignore_interrupts() -> Iterator[None]:
    """SIGINT ignored for the block (in the main thread; only it can set signal handlers).

    Processes started inside inherit the ignore.
    """
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_further_interrupts() -> None:
    """For a command exiting after Ctrl-C: a second one must not interrupt its clean-up."""
    if _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_workers(pool: ProcessPoolExecutor, seconds: float = STOP_SECONDS) -> None:
    """Cancel the tasks that have not started, stop the workers, wait until they have ended."""
    with ignore_interrupts():
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                process.terminate()
        for process in processes:
            with contextlib.suppress(AttributeError, ValueError):
                process.join(seconds)
                if process.is_alive():
                    process.kill()
                    process.join()


# --- in a worker -------------------------------------------------------------------------------

_busy = threading.Event()
_stopped = threading.Event()


def worker_stops_on_sigterm() -> None:
    """Call in a worker's initializer: SIGTERM stops its task (KeyboardInterrupt), or the idle
    worker itself."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    _stopped.set()
    if _busy.is_set():
        raise KeyboardInterrupt
    os._exit(0)  # idle: nothing to clean up, and nothing to print


@contextlib.contextmanager
def task_in_worker() -> Iterator[None]:
    """Mark a worker busy with a task for the block: SIGTERM interrupts the task, and once its
    clean-up has run (files closed, temporaries removed) the worker exits at once."""
    _busy.set()
    try:
        yield
    except KeyboardInterrupt:
        if _stopped.is_set():
            os._exit(0)  # no one waits for this task's result; a normal exit takes seconds
        raise
    finally:
        _busy.clear()
