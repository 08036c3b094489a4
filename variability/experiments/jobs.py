"""Independent jobs run side by side: what an executor offers, and the executors of this machine.

A job is a module-level function and its picklable arguments (a model to probe, a cell to
train), with a name (the model's, for messages) and, if it writes one, the directory it writes.
``JobPool`` is all the experiments ask of an engine: ``submit`` a job and get a
``concurrent.futures.Future``, take submitted jobs ``as_completed``, ``cancel`` what has not
ended, ``close``. ``schedule`` runs a list of items through a pool by the experiments' rules (at
most ``pool.workers`` at once; a failure is reported and, unless ``fail_fast``, the others go
on). An ``Executor`` is the engine a command was asked for (``--executor local|ray``): it
resolves the device, makes pools, and runs jobs with ``run``; ``run_jobs`` maps a function over
jobs with it. The calling process stays the only one that writes results.

Two pools implement the interface here: ``InProcess`` (one job at a time in this process:
nothing to pickle or spawn) and ``LocalPool`` (spawned worker processes); ``ray_pool`` has the
Ray one. Jobs talk to whichever engine runs them through ``in_job`` (progress messages, where to
write).

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
import dataclasses
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from variability.devices import resolve_device
from variability.errors import VariabilityError, first_line
from variability.experiments import in_job
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
"""How often a pool waiting for jobs to end delivers their progress messages."""

OnMessage = Callable[[str, Any], None]
"""``on_message(job name, payload)``: a job's ``in_job.tell(payload)``, in the calling process."""
Say = Callable[[str], None]
"""A line for the person running the command (a retry, a failure)."""


class JobPool(Protocol):
    """An engine's jobs; ``workers`` is how many run at once."""

    workers: int

    def submit(
        self,
        function: Callable[..., R],
        /,
        *args: Any,
        name: str = "",
        writes: str | os.PathLike[str] | None = None,
    ) -> Future[R]:
        """Start ``function(*args)`` (or queue it); the future holds its result or error.

        ``name`` names the job in messages; ``writes`` is the directory it writes (on the
        calling process's filesystem), for engines whose workers may not share it."""
        ...

    def as_completed(
        self, jobs: Collection[Future[Any]], timeout: float | None = None
    ) -> list[Future[Any]]:
        """The jobs among ``jobs`` that have ended, waiting up to ``timeout`` seconds (None:
        as long as it takes) for the first; an empty list when the time ran out."""
        ...

    def cancel(self) -> None:
        """Drop every job that has not started, and stop the others without waiting for them."""
        ...

    def close(self) -> None:
        """Wait for the running jobs and release the workers."""
        ...


@dataclass(frozen=True)
class Job:
    """One job for ``Executor.run``: ``function(*args)``, named, writing ``writes`` (if any)."""

    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...]
    writes: str | os.PathLike[str] | None = None


class JobsFailed(VariabilityError):
    """Jobs that failed while the others went on: ``failures`` holds ``(name, error)`` pairs,
    each error as the job raised it; ``total`` is how many jobs were run. ``JobsFailed.of``
    writes the message."""

    def __init__(
        self, message: str, *, failures: Sequence[tuple[str, BaseException]] = (), total: int = 0
    ) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.total = total

    @classmethod
    def of(cls, failures: Sequence[tuple[str, BaseException]], total: int) -> JobsFailed:
        shown = "; ".join(f"{name}: {describe_error(error)}" for name, error in failures)
        return cls(
            f"{len(failures)} of {total} jobs failed: {shown}", failures=failures, total=total
        )


def describe_error(error: BaseException) -> str:
    """``Type: first line of the message``, for one-line reports."""
    return f"{type(error).__name__}: {first_line(error)}"


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
    """Jobs run in this process, one at a time, as they are submitted; their messages reach
    ``on_message`` at once."""

    workers = 1

    def __init__(self, threads: int | None = None, on_message: OnMessage | None = None) -> None:
        self.threads = threads
        self.on_message = on_message

    def submit(
        self,
        function: Callable[..., R],
        /,
        *args: Any,
        name: str = "",
        writes: str | os.PathLike[str] | None = None,
    ) -> Future[R]:
        future: Future[R] = Future()
        with intra_op_threads(self.threads), in_job.running(name, self.on_message):
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
    threads; their messages come back through a queue and reach ``on_message`` while
    ``as_completed`` waits."""

    def __init__(
        self,
        workers: int,
        *,
        threads: int | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        self.workers = workers
        self.on_message = on_message
        context = multiprocessing.get_context("spawn")
        self._messages = context.Queue() if on_message is not None else None
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(os.getpid(), threads, self._messages),
        )

    def submit(
        self,
        function: Callable[..., R],
        /,
        *args: Any,
        name: str = "",
        writes: str | os.PathLike[str] | None = None,
    ) -> Future[R]:
        # submit starts the worker processes: without the main script, and never taking Ctrl-C
        with _main_module_hidden(), ignore_interrupts():
            return self._executor.submit(_as_task, name, function, *args)

    def as_completed(
        self, jobs: Collection[Future[Any]], timeout: float | None = None
    ) -> list[Future[Any]]:
        if not jobs:
            return []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            ended, _ = wait(
                jobs, timeout=max(0.0, min(left, POLL_SECONDS)), return_when=FIRST_COMPLETED
            )
            self._deliver()
            if ended or (deadline is not None and time.monotonic() >= deadline):
                return list(ended)

    def _deliver(self) -> None:
        if self._messages is None or self.on_message is None:
            return
        while True:
            try:
                name, payload = self._messages.get_nowait()
            except queue.Empty:
                return
            self.on_message(name, payload)

    def cancel(self) -> None:
        stop_workers(self._executor)  # Ctrl-C, or an error: no worker trains on (interrupts.py)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._deliver()


def local_pool(workers: int, device: torch.device, on_message: OnMessage | None = None) -> JobPool:
    """``InProcess`` for one worker, else a ``LocalPool``; one intra-op thread a job on the CPU."""
    threads = job_threads(device)
    if workers <= 1:
        return InProcess(threads, on_message)
    return LocalPool(workers, threads=threads, on_message=on_message)


# --- running many ------------------------------------------------------------------------------


def schedule(
    pool: JobPool,
    items: Iterable[T],
    start: Callable[[T], Future[R]],
    finished: Callable[[T, R], None],
    *,
    name: Callable[[T], str] = str,
    fail_fast: bool = False,
    failed: Callable[[T, BaseException], None] | None = None,
) -> None:
    """Run every item through ``pool``, at most ``pool.workers`` at once: ``start(item)``
    submits it, ``finished(item, result)`` is called here as each ends, ``failed(item, error)``
    as each fails.

    A failure does not stop the others: once every item has ended, ``JobsFailed`` names the
    failed ones (by ``name(item)``) with their errors. With ``fail_fast`` the first failure
    stops new items from starting, and its error is raised as itself once the running ones have
    ended (their results are kept). An interrupt cancels what has not ended. The pool is closed
    either way.
    """
    waiting = list(items)
    total = len(waiting)
    running: dict[Future[R], T] = {}
    failures: list[tuple[T, BaseException]] = []
    try:
        while waiting or running:
            while waiting and len(running) < pool.workers and not (fail_fast and failures):
                item = waiting.pop(0)
                running[start(item)] = item
            for future in pool.as_completed(list(running)):
                item = running.pop(future)
                try:
                    result = future.result()
                except BaseException as failure:
                    failures.append((item, failure))
                    if failed is not None:
                        failed(item, failure)
                    continue
                finished(item, result)
            if fail_fast and failures:
                waiting.clear()
    except BaseException:
        pool.cancel()
        raise
    pool.close()
    if failures and fail_fast:
        raise failures[0][1]
    if failures:
        raise JobsFailed.of([(name(item), error) for item, error in failures], total)


class Executor:
    """The engine a command's jobs run on, and its rule for failures.

    ``pool`` makes a ``JobPool`` for a batch of jobs; ``run`` runs a batch through one.
    ``fail_fast``: the first failure stops new jobs (else the others go on, and ``JobsFailed``
    names every failure at the end). ``say`` gets a line for each failure and retry, as it
    happens. ``close`` releases what the engine holds (a Ray cluster started for the run).
    """

    name = "local"

    def __init__(self, *, fail_fast: bool = False, say: Say | None = None) -> None:
        self.fail_fast = fail_fast
        self.say = say

    def device(self, requested: str | torch.device) -> torch.device:
        """The device jobs train on, for ``--device`` (``auto``, ``cpu``, ``cuda``...)."""
        return resolve_device(requested)

    def pool(
        self,
        device: torch.device,
        jobs: int,
        *,
        workers: int | None = None,
        on_message: OnMessage | None = None,
    ) -> JobPool:
        raise NotImplementedError

    def describe(self, device: torch.device, jobs: int, workers: int | None = None) -> str:
        """Where ``jobs`` jobs run, in a few words (for the line a command prints first)."""
        raise NotImplementedError

    def run(
        self,
        items: Sequence[T],
        job: Callable[[T], Job],
        finished: Callable[[T, Any], None],
        *,
        device: torch.device,
        workers: int | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        """Run ``job(item)`` for every item, calling ``finished(item, result)`` here as each
        ends; failures follow the executor's rule (``schedule``)."""
        if not items:
            return
        jobs = [job(item) for item in items]
        pool = self.pool(device, len(jobs), workers=workers, on_message=on_message)

        def start(index: int) -> Future[Any]:
            spec = jobs[index]
            return pool.submit(spec.function, *spec.args, name=spec.name, writes=spec.writes)

        def failed(index: int, error: BaseException) -> None:
            if self.say is not None:
                self.say(f"{jobs[index].name} failed: {describe_error(error)}")

        schedule(
            pool,
            range(len(jobs)),
            start,
            lambda index, result: finished(items[index], result),
            name=lambda index: jobs[index].name,
            fail_fast=self.fail_fast,
            failed=failed,
        )

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """This machine: the jobs in this process (one worker) or in spawned worker processes."""

    name = "local"

    def pool(
        self,
        device: torch.device,
        jobs: int,
        *,
        workers: int | None = None,
        on_message: OnMessage | None = None,
    ) -> JobPool:
        return local_pool(worker_count(workers, device, jobs), device, on_message)

    def describe(self, device: torch.device, jobs: int, workers: int | None = None) -> str:
        count = worker_count(workers, device, jobs)
        cores = f" of {usable_cores()} cores" if device.type == "cpu" else ""
        return f"{device}, {count} at a time{cores}"


def job_label(job: Any) -> str:
    """A short name for a job that has none: a dataclass's plain fields (``family=fc depth=10
    seed=0``; paths, devices and nested settings left out), else its ``str``."""
    if not dataclasses.is_dataclass(job) or isinstance(job, type):
        return str(job)
    parts = []
    for field in dataclasses.fields(job):
        value = getattr(job, field.name)
        if field.name == "device" or isinstance(value, bool):
            continue
        if hasattr(value, "key"):
            value = value.key
        if isinstance(value, tuple) and all(isinstance(v, int | float | str) for v in value):
            value = ",".join(map(str, value))
        if isinstance(value, int | float) or (isinstance(value, str) and os.sep not in value):
            parts.append(f"{field.name}={value}")
    return " ".join(parts) or type(job).__name__


def run_jobs(
    function: Callable[[T], R],
    jobs: Sequence[T],
    *,
    device: torch.device,
    workers: int | None = None,
    on_done: Callable[[T, R], None] | None = None,
    executor: Executor | None = None,
) -> list[R]:
    """``[function(job) for job in jobs]`` on ``executor`` (default: this machine's processes);
    ``on_done`` as each ends.

    ``function`` must be a module-level function and the jobs picklable. A job with a
    ``run_dir`` attribute writes that directory (engines without the caller's files bring it
    home). Workers default to one per core on the CPU (at most 8) and one on a GPU; with one
    worker everything runs in this process. Results come back in the order of the jobs,
    whatever order they end in. Failures follow the executor's rule (``schedule``): errors come
    back as the jobs raised them.
    """
    jobs = list(jobs)
    results: dict[int, R] = {}
    engine = executor or LocalExecutor()

    def finished(index: int, result: R) -> None:
        results[index] = result
        if on_done is not None:
            on_done(jobs[index], result)

    engine.run(
        range(len(jobs)),
        lambda index: Job(
            job_label(jobs[index]), function, (jobs[index],), getattr(jobs[index], "run_dir", None)
        ),
        finished,
        device=device,
        workers=workers,
    )
    return [results[index] for index in range(len(jobs))]


# --- inside a worker ---------------------------------------------------------------------------

_channel: dict[str, Any] = {}


def _start_worker(parent: int, threads: int | None, messages: Any) -> None:
    _die_with(parent)
    worker_stops_on_sigterm()
    if threads is not None:
        torch.set_num_threads(threads)
    _channel.update(parent=parent, messages=messages)


def _tell_driver(name: str, payload: Any) -> None:
    if os.getppid() != _channel["parent"]:
        os._exit(1)  # the driver was killed (not Linux): leave the job to a resumed run
    _channel["messages"].put((name, payload))


def _as_task(name: str, function: Callable[..., R], *args: Any) -> R:
    """A job in a worker: SIGTERM (the command's stop) interrupts it between steps."""
    tell = _tell_driver if _channel.get("messages") is not None else None
    with task_in_worker(), in_job.running(name, tell):
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
    "Executor",
    "InProcess",
    "Job",
    "JobPool",
    "JobsFailed",
    "LocalExecutor",
    "LocalPool",
    "OnMessage",
    "Say",
    "describe_error",
    "intra_op_threads",
    "job_label",
    "job_threads",
    "local_pool",
    "run_jobs",
    "schedule",
    "usable_cores",
    "worker_count",
]
