"""A real Ray cluster for the tests of ``--executor ray``: no mocks.

Ray is told, before it is imported, to keep every address on the loopback interface (its
default is the machine's network address) and not to ask for a token (a cluster of one test
on 127.0.0.1). ``ray_here`` starts a local cluster of 2 CPUs in this process, once for the
module (it takes seconds); ``ray_cluster`` a separate one with ``ray start --head`` whose
address the command line is given, stopped in a finally by the PID of that ``ray start``
(never ``ray stop``, which stops every Ray process of the machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
os.environ.update(LOOPBACK_ENV)  # before anything imports ray

import ray  # noqa: E402  (after the environment above; the dev extra installs it)

START_TIMEOUT = 180.0
"""Seconds a cluster may take to start on a busy 2-core machine."""


@pytest.fixture(scope="module")
def ray_here() -> Iterator[None]:
    """This process connected to a fresh local cluster of 2 CPUs (``ray.init(num_cpus=2)``)."""
    temp = tempfile.mkdtemp(prefix="vray")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        _temp_dir=temp,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def ray_cluster() -> Iterator[str]:
    """A head node started with ``ray start --head`` on 127.0.0.1; yields its address."""
    temp = tempfile.mkdtemp(prefix="vray")
    port = free_port()
    log = Path(temp) / "start.log"
    ray_cli = Path(sys.executable).parent / "ray"
    command = [
        str(ray_cli), "start", "--head", "--block", "--port", str(port),
        "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
        "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp,
    ]  # fmt: skip
    with log.open("w") as output:
        head = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **LOOPBACK_ENV},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not re.search("Ray runtime started", log.read_text()):
            assert head.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ray start took too long"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # --block: it stops the processes it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def busy_ray_workers() -> list[int]:
    """PIDs of Ray workers running a job now (Ray names them after the task's function)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"ray::_run_on_worker"):
            found.append(int(entry.name))
    return found
