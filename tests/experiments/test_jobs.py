"""The job pool: its interface, the rules of ``schedule``, and the local worker processes."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future

import pytest
import torch

from variability.experiments import in_job
from variability.experiments.jobs import (
    InProcess,
    JobsFailed,
    LocalPool,
    job_label,
    job_threads,
    local_pool,
    schedule,
    usable_cores,
    worker_count,
)


def divide(job: int) -> float:
    return 1 / job


def where_and_threads(_job: int) -> tuple[int, int]:
    return os.getpid(), torch.get_num_threads()


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def count_aloud(steps: int) -> str | None:
    for step in range(1, steps + 1):
        in_job.tell(step)
    return in_job.job_name()


class Recorder(list):
    """What ``finished`` was called with, in order."""

    def append_pair(self, job: int, result: float) -> None:
        self.append((job, result))


def test_fail_fast_keeps_the_results_before_an_error_and_starts_nothing_after_it():
    done = Recorder()
    started: list[int] = []
    pool = InProcess()

    def start(job: int) -> Future[float]:
        started.append(job)
        return pool.submit(divide, job)

    with pytest.raises(ZeroDivisionError):  # the job's own error, as itself
        schedule(pool, [1, 2, 0, 4], start, done.append_pair, fail_fast=True)
    assert done == [(1, 1.0), (2, 0.5)] and started == [1, 2, 0]


def test_by_default_a_failure_is_reported_by_name_and_the_others_go_on():
    done = Recorder()
    failed: list[tuple[int, str]] = []
    pool = InProcess()
    with pytest.raises(JobsFailed) as raised:
        schedule(
            pool,
            [1, 0, 4, 0],
            lambda job: pool.submit(divide, job),
            done.append_pair,
            name=lambda job: f"job-{job}",
            failed=lambda job, error: failed.append((job, type(error).__name__)),
        )
    assert done == [(1, 1.0), (4, 0.25)]  # the jobs after the failures ran
    assert failed == [(0, "ZeroDivisionError")] * 2
    assert [name for name, _ in raised.value.failures] == ["job-0", "job-0"]
    assert all(isinstance(e, ZeroDivisionError) for _, e in raised.value.failures)
    assert raised.value.total == 4 and "2 of 4 jobs failed: job-0: ZeroDivisionError" in str(
        raised.value
    )


def test_jobs_tell_the_driver_their_progress_in_this_process_and_from_workers():
    heard: list[tuple[str, int]] = []
    here = local_pool(1, torch.device("cpu"), on_message=lambda *m: heard.append(m))
    assert here.submit(count_aloud, 3, name="here").result() == "here"
    assert heard == [("here", 1), ("here", 2), ("here", 3)]
    heard.clear()
    pool = local_pool(2, torch.device("cpu"), on_message=lambda *m: heard.append(m))
    try:
        job = pool.submit(count_aloud, 3, name="there")
        while not pool.as_completed([job], timeout=60):
            pass
        pool.close()  # delivers what is still queued
    finally:
        pool.cancel()
    assert job.result() == "there" and heard == [("there", 1), ("there", 2), ("there", 3)]


def test_jobs_without_a_name_get_one_from_their_plain_fields():
    from dataclasses import dataclass

    @dataclass
    class Model:
        key: str

    @dataclass
    class Job:
        model: Model
        lr: float
        seeds: tuple[int, ...]
        run_dir: str
        device: str
        images: bool

    job = Job(Model("han-20x30"), 0.01, (0, 1), "runs/x/han", "cpu", True)
    assert job_label(job) == "model=han-20x30 lr=0.01 seeds=0,1"
    assert job_label(7) == "7"


class Watched(InProcess):
    """An in-process pool that records how it was ended."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[str] = []

    def cancel(self) -> None:
        self.ended.append("cancel")

    def close(self) -> None:
        self.ended.append("close")


def test_an_interrupt_cancels_the_pool_and_a_normal_end_closes_it():
    pool = Watched()

    def interrupted(job: int) -> Future[float]:
        if job == 2:
            raise KeyboardInterrupt
        return pool.submit(divide, job)

    with pytest.raises(KeyboardInterrupt):
        schedule(pool, [1, 2, 3], interrupted, lambda job, result: None)
    assert pool.ended == ["cancel"]
    again = Watched()
    schedule(again, [1, 2], lambda job: again.submit(divide, job), lambda job, result: None)
    assert again.ended == ["close"]


def test_in_process_jobs_run_here_with_the_threads_asked_for():
    previous = torch.get_num_threads()
    pool = local_pool(1, torch.device("cpu"))
    assert isinstance(pool, InProcess) and pool.workers == 1
    pid, threads = pool.submit(where_and_threads, 0).result()
    assert pid == os.getpid() and threads == 1
    assert torch.get_num_threads() == previous  # restored after the job


def test_local_workers_are_other_processes_that_report_as_they_end():
    pool = local_pool(2, torch.device("cpu"))
    assert isinstance(pool, LocalPool) and pool.workers == 2
    try:
        slow = pool.submit(nap, 5.0)
        assert pool.as_completed([slow], timeout=0.05) == []  # nothing ended yet
        fast = pool.submit(where_and_threads, 0)
        (first,) = pool.as_completed([slow, fast], timeout=60)
        assert first is fast and fast.result()[0] != os.getpid()
    finally:
        pool.cancel()


def test_local_workers_take_the_thread_count_they_are_given():
    wanted = usable_cores() + 1  # never torch's default, which is at most one per core
    pool = LocalPool(1, threads=wanted)
    try:
        assert pool.submit(where_and_threads, 0).result()[1] == wanted
    finally:
        pool.close()
    assert job_threads(torch.device("cpu")) == 1 and job_threads(torch.device("cuda")) is None


def test_worker_count_is_one_per_core_on_the_cpu_one_on_a_gpu_and_never_above_the_jobs():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert worker_count(None, gpu, 10) == 1
    assert worker_count(3, cpu, 2) == 2 and worker_count(0, cpu, 5) == 1
    assert 1 <= worker_count(None, cpu, 100) <= 8
