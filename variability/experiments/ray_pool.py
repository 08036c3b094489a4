"""Jobs on a Ray cluster: each model a Ray task, the command's process the only writer.

Ray is an existing engine that ML researchers already run on their GPU boxes and clusters: it
schedules tasks by the resources they ask for. ``RayExecutor`` connects to a cluster (the one at
``--ray-address``, else a running one if Ray finds one, else a local one started for the run and
stopped at its end) and makes ``RayPool``s, which offer the same four methods as the local pool
(``jobs.JobPool``), so the comparison and the reproductions do not know which engine runs them.

- **Resources**: a job asks for 1 CPU, or, when it trains on CUDA, for 1 GPU (and no CPU: the
  GPU is what a node has few of), so every GPU of the cluster trains a model at once. Ray makes
  the task's GPU its ``cuda:0``. At most one job per CPU (or GPU) of the cluster is in flight, so
  that ``--fail-fast`` and Ctrl-C have as little as possible to stop.
- **What travels**: the job's function (by reference: every node needs the same Python
  environment, variability and torch included) and its arguments; back, its result. A job that
  writes a run directory writes it in place when its worker sees the driver's files (a shared
  filesystem, detected per job with ``run_files.same_files``); otherwise it is sent the
  directory's current files (to resume from its checkpoints), writes a scratch copy, and returns
  its files with the result, which the driver writes (``run_files.bring_home``) before it takes
  the result.
- **Failures**: an error raised by a job comes back as itself (``RayTaskError.cause``). A worker
  that dies (process killed, node lost, out of memory) is not the job's fault: the job runs once
  more, and if its worker dies again it fails with ``WorkerDied``. Nothing is written for a job
  until its result is in the driver, so a death leaves no torn record.
- **Progress**: jobs' ``in_job.tell`` messages go through a small Ray queue actor (no CPU
  asked) that the driver drains while it waits.
- **Stopping** (Ctrl-C, ``--fail-fast``): the pool stops waiting for its tasks and forgets them;
  it does not ``ray.cancel`` them. Ray 2.60's driver can abort when a cancelled task's reply
  races its cancellation ("Tried to complete task that was not pending": the Ctrl-C test of
  tests/ray exited 1 so, once, in a full test run on this machine under load). The command's
  process then leaves, which ends its Ray job, and Ray stops the job's tasks; a model stopped
  so resumes from its last checkpoint (its files are written atomically, so none is torn).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import ray.exceptions
import torch
from ray.util.queue import Queue

from variability.errors import UserError, VariabilityError, first_line
from variability.experiments import in_job
from variability.experiments.jobs import (
    POLL_SECONDS,
    Executor,
    JobPool,
    OnMessage,
    Say,
    intra_op_threads,
    job_threads,
)
from variability.experiments.run_files import Mark, bring_home, leave_mark, pack, same_files, unpack

__all__ = [
    "ATTEMPTS",
    "RayExecutor",
    "RayPool",
    "WorkerDied",
    "cluster_device",
    "task_resources",
]

ATTEMPTS = 2
"""Runs of a job whose worker dies: the first, and one more."""

WORKER_DEATHS: tuple[type[BaseException], ...] = (
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OutOfMemoryError,
)
"""What Ray raises when a task's worker, not its code, failed."""


class WorkerDied(VariabilityError):
    """A job whose worker died on every attempt (a rerun tries it again)."""


def task_resources(device: torch.device) -> dict[str, float]:
    """What one job asks of the cluster: a GPU on CUDA, else a CPU."""
    if device.type == "cuda":
        return {"num_gpus": 1, "num_cpus": 0}
    return {"num_cpus": 1}


def cluster_device(requested: str | torch.device, gpus: float) -> torch.device:
    """``--device`` on a cluster of ``gpus`` GPUs: ``auto`` is CUDA when there are any. A job's
    GPU is its task's ``cuda:0``, so ``cuda:N`` means CUDA, whichever GPU Ray gives it."""
    text = str(requested).strip().lower()
    if text == "auto":
        return torch.device("cuda" if gpus > 0 else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if gpus <= 0:
            raise UserError(
                f"device {requested!r} was asked for, but the Ray cluster has no GPU "
                "(use --device cpu, or --device auto to take GPUs only when there are some)"
            )
        return torch.device("cuda")
    raise UserError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")


class RayExecutor(Executor):
    """Jobs as Ray tasks on the cluster at ``address`` (see the module's docstring).

    If this process is already connected to Ray (``ray.init`` in a script or a test), that
    connection is used and left open. ``files``: ``"auto"`` (run directories written in place
    where a worker shares the driver's filesystem, else brought home) or ``"return"`` (always
    brought home).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        fail_fast: bool = False,
        say: Say | None = None,
        files: str = "auto",
    ) -> None:
        super().__init__(fail_fast=fail_fast, say=say)
        if files not in ("auto", "return"):
            raise ValueError(f"files must be 'auto' or 'return', got {files!r}")
        self.files = files
        self.connected_here = not ray.is_initialized()
        if self.connected_here:
            try:
                ray.init(
                    address=address,
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                    include_dashboard=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as error:
                where = f"at {address}" if address else "for this run"
                raise UserError(
                    f"cannot start or reach a Ray cluster {where}: {first_line(error)}"
                ) from None
        resources = ray.cluster_resources()
        self.address = ray.get_runtime_context().gcs_address
        self.nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        self.cpus = float(resources.get("CPU", 0))
        self.gpus = float(resources.get("GPU", 0))

    def device(self, requested: str | torch.device) -> torch.device:
        return cluster_device(requested, self.gpus)

    def slots(self, device: torch.device, jobs: int, workers: int | None = None) -> int:
        """Jobs in flight at once: one per GPU (on CUDA) or CPU of the cluster, at most
        ``workers`` and ``jobs``, at least one."""
        capacity = int(self.gpus if device.type == "cuda" else self.cpus)
        if workers is not None:
            capacity = min(capacity, workers)
        return max(1, min(capacity, jobs))

    def pool(
        self,
        device: torch.device,
        jobs: int,
        *,
        workers: int | None = None,
        on_message: OnMessage | None = None,
    ) -> JobPool:
        return RayPool(
            device,
            self.slots(device, jobs, workers),
            on_message=on_message,
            say=self.say,
            files=self.files,
        )

    def resources(self) -> str:
        """The cluster, in a few words: where, nodes, CPUs, GPUs."""
        nodes = f"{self.nodes} node" + ("s" if self.nodes != 1 else "")
        return f"Ray at {self.address}: {nodes}, {self.cpus:g} CPUs, {self.gpus:g} GPUs"

    def describe(self, device: torch.device, jobs: int, workers: int | None = None) -> str:
        return f"{device}, {self.slots(device, jobs, workers)} at a time on {self.resources()}"

    def close(self) -> None:
        if self.connected_here and ray.is_initialized():
            ray.shutdown()


# --- the pool ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """What a worker needs besides the job itself (sent with every task)."""

    name: str
    threads: int | None
    cwd: str
    home: str | None  # the directory the job writes, absolute, on the driver
    mark: Mark | None  # the driver's token beside it (None: always bring home)
    seed: list[Any]  # [ObjectRef of the directory's files] (nested: fetched only if needed)
    messages: Any  # the queue actor's handle, or None


@dataclass
class _Running:
    spec: _Spec
    function: Callable[..., Any]
    args: tuple[Any, ...]
    ref: Any = None
    attempt: int = 1
    deaths: list[str] = field(default_factory=list)


class RayPool:
    """Jobs as Ray tasks, at most ``workers`` in flight (see the module's docstring)."""

    def __init__(
        self,
        device: torch.device,
        workers: int,
        *,
        on_message: OnMessage | None = None,
        say: Say | None = None,
        files: str = "auto",
    ) -> None:
        self.workers = workers
        self.on_message = on_message
        self.say = say
        self.files = files
        self._threads = job_threads(device)
        self._remote = ray.remote(_run_on_worker).options(max_retries=0, **task_resources(device))
        self._queue = Queue(actor_options={"num_cpus": 0}) if on_message is not None else None
        self._running: dict[Future[Any], _Running] = {}
        self._marks: dict[Path, Mark] = {}

    def submit(
        self,
        function: Callable[..., Any],
        /,
        *args: Any,
        name: str = "",
        writes: str | os.PathLike[str] | None = None,
    ) -> Future[Any]:
        home = None if writes is None else Path(os.path.abspath(writes))
        mark = None
        seed: list[Any] = []
        if home is not None:
            if self.files == "auto":
                if home.parent not in self._marks:
                    self._marks[home.parent] = leave_mark(home.parent)
                mark = self._marks[home.parent]
            files = pack(home)
            seed = [ray.put(files)] if files else []
        spec = _Spec(
            name,
            self._threads,
            os.getcwd(),
            None if home is None else str(home),
            mark,
            seed,
            None if self._queue is None else self._queue.actor,
        )
        future: Future[Any] = Future()
        job = _Running(spec, function, args)
        job.ref = self._remote.remote(spec, function, *args)
        self._running[future] = job
        return future

    def as_completed(
        self, jobs: Collection[Future[Any]], timeout: float | None = None
    ) -> list[Future[Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ended = [job for job in jobs if job.done()]
            waiting = {self._running[job].ref: job for job in jobs if job in self._running}
            if ended or not waiting:
                return ended
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            ready, _ = ray.wait(list(waiting), timeout=max(0.0, min(left, POLL_SECONDS)))
            if ready:  # every other one that is ready too
                ready, _ = ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            self._deliver()
            for ref in ready:
                self._settle(waiting[ref])
            if deadline is not None and time.monotonic() >= deadline:
                return [job for job in jobs if job.done()]

    def _settle(self, future: Future[Any]) -> None:
        """Take a finished task's outcome: result (its run directory brought home first), the
        job's own error, or a dead worker (run again once)."""
        job = self._running[future]
        try:
            result, files = ray.get(job.ref)
            if files is not None and job.spec.home is not None:
                bring_home(files, Path(job.spec.home))
        except WORKER_DEATHS as death:
            job.deaths.append(f"{type(death).__name__}: {first_line(death)}")
            if job.attempt < ATTEMPTS:
                job.attempt += 1
                if self.say is not None:
                    self.say(
                        f"{job.spec.name}: its Ray worker died ({type(death).__name__}); "
                        f"running it again (attempt {job.attempt} of {ATTEMPTS})"
                    )
                job.ref = self._remote.remote(job.spec, job.function, *job.args)
                return
            del self._running[future]
            future.set_exception(
                WorkerDied(
                    f"{job.spec.name}: its Ray worker died on each of {ATTEMPTS} attempts "
                    f"(last: {job.deaths[-1]})"
                )
            )
            return
        except ray.exceptions.RayTaskError as error:
            del self._running[future]
            cause = error.cause if isinstance(error.cause, BaseException) else error
            future.set_exception(cause)
            return
        except Exception as error:  # cancelled, unschedulable, an unwritable run directory...
            del self._running[future]
            future.set_exception(error)
            return
        del self._running[future]
        future.set_result(result)

    def _deliver(self) -> None:
        if self._queue is None or self.on_message is None:
            return
        count = self._queue.qsize()
        if count:
            for name, payload in self._queue.get_nowait_batch(count):
                self.on_message(name, payload)

    def cancel(self) -> None:
        """Stop waiting for the running tasks and forget them (see "Stopping" above: they end
        with the command's Ray job, not by ``ray.cancel``)."""
        for future in self._running:
            future.cancel()
        self._running.clear()
        self._release()

    def close(self) -> None:
        while self._running:  # nothing runs by now when schedule closes; a direct caller waits
            self.as_completed(list(self._running))
        self._deliver()
        self._release()

    def _release(self) -> None:
        if self._queue is not None:
            with contextlib.suppress(Exception):
                self._queue.shutdown()
            self._queue = None
        for mark in self._marks.values():
            with contextlib.suppress(OSError):
                Path(mark.path).unlink()
        self._marks.clear()


# --- on a worker -------------------------------------------------------------------------------


def _run_on_worker(spec: _Spec, function: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    """One job on a Ray worker: ``(result, None)`` when its directory was written in place,
    ``(result, files)`` when it was written in a scratch copy to be brought home."""
    tell = None if spec.messages is None else _teller(spec.messages)
    with intra_op_threads(spec.threads):
        if spec.home is None:
            with in_job.running(spec.name, tell):
                return function(*args), None
        if spec.mark is not None and same_files(spec.mark):
            with _working_directory(spec.cwd), in_job.running(spec.name, tell):
                return function(*args), None
        scratch = Path(tempfile.mkdtemp(prefix="variability-job-"))
        try:
            copy = scratch / Path(spec.home).name
            copy.mkdir()
            if spec.seed:
                unpack(ray.get(spec.seed[0]), copy)
            moved = in_job.Moved(Path(spec.cwd), Path(spec.home), copy)
            with in_job.running(spec.name, tell, moved):
                result = function(*args)
            return result, pack(copy)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _teller(messages: Any) -> Callable[[str, Any], None]:
    def tell(name: str, payload: Any) -> None:
        messages.put_nowait.remote((name, payload))  # not awaited: training does not wait

    return tell


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    """The driver's working directory for the block, so that its relative paths mean the same."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
