"""Run independent jobs (a model to probe or train) one per single-threaded worker process.

The models of the reproductions are tiny: a step costs per-operation overhead, not arithmetic, so
a second intra-op thread buys nothing, and on a shared machine its spin-waiting slows everything
(docs/benchmarks.md has the measurements). Each job therefore runs with one thread, and
independent jobs run side by side in spawned processes, one per core: the process handling of
``variability compare`` (``experiments.comparison.cells``: workers that do not re-import the
calling script and die with it). Results come back in the order of the jobs, whatever order they
finish in; every job's randomness is its own seed, so the results do not depend on the number
of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import torch

from variability.experiments.comparison.cells import (
    _die_with,
    intra_op_threads,
    schedule,
    worker_count,
)

Job = TypeVar("Job")


@contextlib.contextmanager
def single_thread(device: torch.device) -> Iterator[None]:
    """One intra-op thread while on the CPU (restored after)."""
    with intra_op_threads(1) if device.type == "cpu" else contextlib.nullcontext():
        yield


def run_jobs(
    function: Callable[[Job], Any],
    jobs: Sequence[Job],
    *,
    device: torch.device,
    workers: int | None = None,
    on_done: Callable[[Job, Any], None] | None = None,
) -> list[Any]:
    """``[function(job) for job in jobs]``, in ``workers`` processes; ``on_done`` as each ends.

    ``function`` must be a module-level function and the jobs picklable. Workers default to
    one per core on the CPU (at most 8) and one on a GPU; with one worker everything runs in
    this process. The first error stops new jobs from starting and is raised once the running
    ones have ended.
    """
    jobs = list(jobs)
    count = worker_count(workers, device, len(jobs))
    results: list[Any] = [None] * len(jobs)

    def finished(index: int, result: Any) -> None:
        results[index] = result
        if on_done is not None:
            on_done(jobs[index], result)

    if count <= 1:
        with single_thread(device):
            for index, job in enumerate(jobs):
                finished(index, function(job))
        return results
    pool = ProcessPoolExecutor(
        count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(),),
    )
    schedule(
        pool,
        list(range(len(jobs))),
        lambda index: pool.submit(function, jobs[index]),
        finished,
        limit=count,
    )
    return results


def _start_worker(parent: int) -> None:
    _die_with(parent)
    torch.set_num_threads(1)


__all__ = ["run_jobs", "single_thread"]
