"""Run independent jobs (a model to probe or train) one per single-threaded worker process.

The models of the reproductions are tiny: a step costs per-operation overhead, not arithmetic, so
a second intra-op thread buys nothing, and on a shared machine its spin-waiting slows everything
(docs/reproductions.md has the measurements). Each job therefore runs with one thread, and
independent jobs run side by side in spawned processes, one per core. Results come back in the
order of the jobs, whatever order they finish in; every job's randomness is its own seed, so the
results do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

import torch

Job = TypeVar("Job")
MAX_WORKERS = 8


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(device: torch.device, jobs: int) -> int:
    """One worker per core on the CPU (at most 8), one on a GPU; never more than the jobs."""
    count = 1 if device.type != "cpu" else min(usable_cores(), MAX_WORKERS)
    return max(1, min(count, jobs))


@contextlib.contextmanager
def single_thread(device: torch.device) -> Iterator[None]:
    """One intra-op thread while on the CPU (restored after)."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_jobs(
    function: Callable[[Job], Any],
    jobs: Sequence[Job],
    *,
    device: torch.device,
    workers: int | None = None,
    on_done: Callable[[Job, Any], None] | None = None,
) -> list[Any]:
    """``[function(job) for job in jobs]``, in ``workers`` processes; ``on_done`` as each ends.

    ``function`` must be a module-level function and the jobs picklable. With one worker (or on a
    GPU) everything runs in this process. The first error stops new jobs from starting and is
    raised once the running ones have ended.
    """
    jobs = list(jobs)
    count = default_workers(device, len(jobs)) if workers is None else min(workers, len(jobs))
    results: list[Any] = [None] * len(jobs)
    if count <= 1:
        with single_thread(device):
            for index, job in enumerate(jobs):
                results[index] = function(job)
                if on_done is not None:
                    on_done(job, results[index])
        return results
    context = multiprocessing.get_context("spawn")
    waiting = list(enumerate(jobs))
    running: dict[Future[Any], int] = {}
    error: BaseException | None = None
    pool = ProcessPoolExecutor(count, mp_context=context, initializer=_start_worker)
    try:
        while waiting or running:
            while waiting and len(running) < count and error is None:
                index, job = waiting.pop(0)
                with _main_module_hidden():  # submit starts the worker processes
                    running[pool.submit(function, job)] = index
            ended, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ended:
                index = running.pop(future)
                try:
                    results[index] = future.result()
                except BaseException as failure:
                    error = error or failure
                    waiting.clear()
                    continue
                if on_done is not None:
                    on_done(jobs[index], results[index])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if error is not None:
        raise error
    return results


def _start_worker() -> None:
    torch.set_num_threads(1)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start workers without re-running the script that started this process.

    A spawned worker imports ``__main__`` again unless it has no file or spec: for the
    ``variability`` command that is the whole command line (seconds per worker), and the jobs
    need nothing from it.
    """
    main = sys.modules.get("__main__")
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


__all__ = ["default_workers", "run_jobs", "single_thread", "usable_cores"]
