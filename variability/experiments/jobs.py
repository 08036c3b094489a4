"""Independent jobs run side by side: what an executor offers, and the executors of this machine.

A job is a module-level function and its picklable arguments (a model to probe, a cell to
train). ``JobPool`` is all the experiments ask of an executor: ``submit`` a job and get a
``concurrent.futures.Future``, take submitted jobs ``as_completed``, ``cancel`` what has not
started, ``close``. ``schedule`` runs a list of items through a pool by the experiments' rules,
and ``run_jobs`` maps a function over jobs with it. Two pools implement the interface here:
``InProcess`` (one job at a time in this process: nothing to pickle or spawn) and ``LocalPool``
(spawned worker processes). An executor on a cluster can offer the same four methods (a Ray
``ObjectRef`` becomes a ``Future`` with ``ref.future()``); the calling process stays the only
one that writes results.

Why the local workers are built this way:

- One intra-op thread per job on the CPU. The models are small, so a step is bound by
  per-operation overhead, not arithmetic: a second thread buys nothing, and on a busy machine
  its spin-waiting made a 4-unit, 32-layer model train three times slower (docs/benchmarks.md).
  One thread per job also makes results independent of how many jobs run at once; every job's
  randomness is its own seed.
- Spawned, not forked (a forked torch is not safe), and without the script that started this
  process: a worker imports nothing it does not need.
- Each worker asks Linux to kill it when its parent dies (even by SIGKILL), so no orphan goes on
  training a model that a resumed run is about to train again.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

import torch

from variability.runs.interrupts import (
    ignore_interrupts,
    stop_workers,
    task_in_worker,
    worker_stops_on_sigterm,
)

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 8
"""Beyond this many processes, each importing torch, memory grows faster than throughput."""

POLL_SECONDS = 0.2
"""How long ``schedule`` waits for a job to end before it polls (for progress messages)."""


class JobPool(Protocol):
    """An executor of jobs; ``workers`` is how many run at once."""

    workers: int

    def submit(self, function: Callable[..., R], /, *args: Any) -> Future[R]:
        """Start ``function(*args)`` (or queue it); the future holds its result or error."""
        ...

    def as_completed(
        self, jobs: Collection[Future[Any]], timeout: float | None = None
    ) -> list[Future[Any]]:
        """The jobs among ``jobs`` that have ended, waiting up to ``timeout`` seconds (None:
        as long as it takes) for the first; an empty list when the time ran out."""
        ...

    def cancel(self) -> None:
        """Drop every job that has not started, and stop without waiting for the others."""
        ...

    def close(self) -> None:
        """Wait for the running jobs and release the workers."""
        ...


# --- this machine ------------------------------------------------------------------------------


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(requested: int | None, device: torch.device, jobs: int) -> int:
    """Jobs run at once: ``requested``, else one per core on the CPU (at most 8) and one on a
    GPU; never more than there are jobs, never fewer than one."""
    if requested is None:
        requested = 1 if device.type != "cpu" else min(usable_cores(), MAX_WORKERS)
    return max(1, min(requested, jobs))


def job_threads(device: torch.device) -> int | None:
    """Intra-op threads per job: one on the CPU (see above), torch's default on a GPU."""
    return 1 if device.type == "cpu" else None


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` for the block (None: left as they are)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class InProcess:
    """Jobs run in this process, one at a time, as they are submitted."""

    workers = 1

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def submit(self, function: Callable[..., R], /, *args: Any) -> Future[R]:
        future: Future[R] = Future()
        with intra_op_threads(self.threads):
            try:
                result = function(*args)
            except Exception as error:  # an interrupt is not the job's result: it propagates
                future.set_exception(error)
            else:
                future.set_result(result)
        return future

    def as_completed(
        self, jobs: Collection[Future[Any]], timeout: float | None = None
    ) -> list[Future[Any]]:
        return [job for job in jobs if job.done()]

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


class LocalPool:
    """Jobs in ``workers`` spawned processes of this machine, each with ``threads`` intra-op
    threads; ``initializer(*initargs)`` runs once in each worker, after its own set-up."""

    def __init__(
        self,
        workers: int,
        *,
        threads: int | None = None,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), threads, initializer, initargs),
        )

    def submit(self, function: Callable[..., R], /, *args: Any) -> Future[R]:
        # submit starts the worker processes: without the main script, and never taking Ctrl-C
        with _main_module_hidden(), ignore_interrupts():
            return self._executor.submit(_as_task, function, *args)

    def as_completed(
        self, jobs: Collection[Future[Any]], timeout: float | None = None
    ) -> list[Future[Any]]:
        ended, _ = wait(jobs, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(ended)

    def cancel(self) -> None:
        stop_workers(self._executor)  # Ctrl-C, or an error: no worker trains on (interrupts.py)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def local_pool(
    workers: int,
    device: torch.device,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> JobPool:
    """``InProcess`` for one worker, else a ``LocalPool``; one intra-op thread per job on the CPU.

    ``initializer`` only runs in worker processes: jobs that run in this process get what it
    would set up some other way.
    """
    threads = job_threads(device)
    if workers <= 1:
        return InProcess(threads)
    return LocalPool(workers, threads=threads, initializer=initializer, initargs=initargs)


# --- running many ------------------------------------------------------------------------------


def schedule(
    pool: JobPool,
    items: Iterable[T],
    start: Callable[[T], Future[R]],
    finished: Callable[[T, R], None],
    *,
    poll: Callable[[], None] | None = None,
) -> None:
    """Run every item through ``pool``, at most ``pool.workers`` at once: ``start(item)``
    submits it, ``finished(item, result)`` is called here as each ends, ``poll()`` between
    waits (of ``POLL_SECONDS``).

    The first error stops new items from starting and is raised once the running ones have
    ended (their results are kept); an interrupt cancels what has not started. The pool is
    closed either way.
    """
    waiting = list(items)
    running: dict[Future[R], T] = {}
    error: BaseException | None = None
    try:
        while waiting or running:
            while waiting and len(running) < pool.workers and error is None:
                item = waiting.pop(0)
                running[start(item)] = item
            timeout = POLL_SECONDS if poll is not None else None
            ended = pool.as_completed(list(running), timeout=timeout)
            if poll is not None:
                poll()
            for future in ended:
                item = running.pop(future)
                try:
                    result = future.result()
                except BaseException as failure:
                    error = error or failure
                    waiting.clear()
                    continue
                finished(item, result)
    except BaseException:
        pool.cancel()
        raise
    pool.close()
    if error is not None:
        raise error


def run_jobs(
    function: Callable[[T], R],
    jobs: Sequence[T],
    *,
    device: torch.device,
    workers: int | None = None,
    on_done: Callable[[T, R], None] | None = None,
) -> list[R]:
    """``[function(job) for job in jobs]``, in ``workers`` processes; ``on_done`` as each ends.

    ``function`` must be a module-level function and the jobs picklable. Workers default to one
    per core on the CPU (at most 8) and one on a GPU; with one worker everything runs in this
    process. Results come back in the order of the jobs, whatever order they end in. The first
    error stops new jobs from starting and is raised, as itself, once the running ones have
    ended.
    """
    jobs = list(jobs)
    results: dict[int, R] = {}
    pool = local_pool(worker_count(workers, device, len(jobs)), device)

    def finished(index: int, result: R) -> None:
        results[index] = result
        if on_done is not None:
            on_done(jobs[index], result)

    schedule(pool, range(len(jobs)), lambda index: pool.submit(function, jobs[index]), finished)
    return [results[index] for index in range(len(jobs))]


# --- inside a worker ---------------------------------------------------------------------------


def _start_worker(
    parent: int,
    threads: int | None,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
) -> None:
    _die_with(parent)
    worker_stops_on_sigterm()
    if threads is not None:
        torch.set_num_threads(threads)
    if initializer is not None:
        initializer(*initargs)


def _as_task(function: Callable[..., R], *args: Any) -> R:
    """A job in a worker: SIGTERM (the command's stop) interrupts it between steps."""
    with task_in_worker():
        return function(*args)


def _die_with(parent: int) -> None:
    """Ask Linux to kill this worker when its parent process dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: jobs that run long check the parent instead
        pass
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start workers without the script that started this process.

    A spawned worker imports ``__main__`` again unless it has no file or spec. Workers need
    nothing from it, and for the ``variability`` command it is the whole command line (typer,
    pandas, matplotlib: seconds per worker); a user's script without an ``if __name__ ==
    "__main__"`` guard would even run again in every worker.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {key: getattr(main, key) for key in ("__file__", "__spec__") if hasattr(main, key)}
    try:
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


__all__ = [
    "MAX_WORKERS",
    "InProcess",
    "JobPool",
    "LocalPool",
    "intra_op_threads",
    "job_threads",
    "local_pool",
    "run_jobs",
    "schedule",
    "usable_cores",
    "worker_count",
]
