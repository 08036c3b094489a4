"""Ctrl-C on a real `variability compare --quiet` training in two worker processes.

Whether Ctrl-C reaches the whole process group (a terminal) or the command alone (`kill -INT`),
and even when it comes twice: exit code 130, the one line saying how to resume and nothing else
(no traceback from a worker still starting, no "leaked semaphore" warning), no worker left
training, no temporary file left behind, within seconds. variability/runs/interrupts.py says how.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ENV
from .test_resume import alive, children_of

LONG = [
    "compare", "--quiet", "--depths", "2,32", "--families", "fc,han", "--seeds", "2",
    "--steps", "100000", "--every", "10", "--tolerance", "0.25", "--workers", "2",
]  # fmt: skip
STOPPED_WITHIN = 15.0


def as_in_a_terminal() -> None:
    """Ctrl-C's default disposition in the command, as a terminal's foreground job has it: a
    test run started in the background of a script inherits SIGINT ignored, which Python keeps."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "variability", *LONG, "--out", str(out)]
    return subprocess.Popen(
        command,
        preexec_fn=as_in_a_terminal,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def wait_for(condition, process: subprocess.Popen, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


def checkpoints(out: Path) -> int:
    return len(list(out.glob("cells/*/checkpoints/last.pt")))


def stopped_cleanly(process: subprocess.Popen, workers: set[int], out: Path) -> None:
    try:
        _, stderr = process.communicate(timeout=STOPPED_WITHIN)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"the comparison was still running {STOPPED_WITHIN} s after Ctrl-C")
    text = stderr.decode()
    assert process.returncode == 130, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), text
    assert "run the same command again to resume" in lines[0]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers outlived the interrupted comparison"
        time.sleep(0.05)
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name]
    assert leftovers == []


def test_ctrl_c_to_the_command_alone(tmp_path):
    """`kill -INT` reaches no worker: the command stops them itself, instead of waiting at exit
    for cells of 100,000 steps to finish."""
    out = tmp_path / "cmp"
    process = start(out)
    wait_for(lambda: checkpoints(out) >= 2, process, "two cells training")
    workers = children_of(process.pid)
    os.kill(process.pid, signal.SIGINT)
    stopped_cleanly(process, workers, out)


def test_a_second_ctrl_c_does_not_cut_the_exit_short(tmp_path):
    """Ctrl-C to the group, then again while the command exits: its clean-up (which unlinks the
    pool's semaphores) still runs whole."""
    out = tmp_path / "cmp"
    process = start(out)
    wait_for(lambda: checkpoints(out) >= 2, process, "two cells training")
    workers = children_of(process.pid)
    os.killpg(process.pid, signal.SIGINT)
    for _ in range(20):
        time.sleep(0.05)
        if process.poll() is not None:
            break
        os.killpg(process.pid, signal.SIGINT)
    stopped_cleanly(process, workers, out)


def test_ctrl_c_while_the_workers_start(tmp_path):
    """Workers still importing torch print no KeyboardInterrupt traceback."""
    out = tmp_path / "cmp"
    process = start(out)
    wait_for(lambda: len(children_of(process.pid)) >= 2, process, "workers starting")
    workers = children_of(process.pid)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    stopped_cleanly(process, workers, out)
