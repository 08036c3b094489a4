"""An interrupted comparison resumes without redoing finished cells: interrupted by an exception
from a cell, by Ctrl-C in the middle of a cell's training, and by SIGKILL of a real
`variability compare` process (the installed script) training two cells at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import variability.experiments.comparison.cells as cell_module

from .conftest import ENV, invoke, read_results

SMALL = [
    "compare", "--depths", "2", "--families", "fc,han", "--seeds", "2", "--steps", "6",
    "--tolerance", "0.25",
    "--every", "2", "--batch-size", "64", "--workers", "1",
]  # fmt: skip
KILLED = [
    "compare", "--depths", "2,4", "--families", "fc,han", "--seeds", "2", "--steps", "4",
    "--tolerance", "0.25",
    "--every", "2", "--batch-size", "64",
]  # fmt: skip
KILLED_CELLS = 8
SCRIPT = Path(sys.executable).parent / "variability"


def files_of(folder: Path, cells: list[str]) -> dict[str, tuple[int, bytes]]:
    """Every file of the given cells' run directories: modification time and content."""
    found = {}
    for name in cells:
        for path in sorted((folder / "cells" / name).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(folder))] = (path.stat().st_mtime_ns, path.read_bytes())
    assert found, "no files to compare"
    return found


def test_a_failed_then_interrupted_comparison_resumes_only_the_unfinished_cells(
    tmp_path, monkeypatch
):
    out = tmp_path / "cmp"
    real = cell_module.run_cell
    calls: list[str] = []

    def fails_on_the_third(cell, *args, **kwargs):
        calls.append(cell.name)
        if len(calls) == 3:
            raise RuntimeError("the third cell failed")
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(cell_module, "run_cell", fails_on_the_third)
    run = invoke(*SMALL, "--fail-fast", "--out", out)  # the default goes on: test_failures.py
    assert run.exit_code == 1 and isinstance(run.exception, RuntimeError)
    assert [r["cell"] for r in read_results(out)] == ["fc-d2-s0", "fc-d2-s1"]
    finished = files_of(out, ["fc-d2-s0", "fc-d2-s1"])

    calls.clear()

    def interrupted_at_step_3(cell, settings, task, folder, device, on_step=None):
        calls.append(cell.name)

        def step(number: int) -> None:
            if number == 3:  # after the checkpoint of step 2
                raise KeyboardInterrupt
            if on_step is not None:
                on_step(number)

        return real(cell, settings, task, folder, device, step)

    monkeypatch.setattr(cell_module, "run_cell", interrupted_at_step_3)
    run = invoke(*SMALL, "--out", out)
    assert run.exit_code == 130, (run.stderr, run.exception)
    assert "interrupted: 2 of 4 models are finished" in run.stderr
    assert "run the same command again to resume" in run.stderr
    assert calls == ["han-d2-s0"]
    assert len(read_results(out)) == 2
    assert (out / "cells" / "han-d2-s0" / "checkpoints" / "last.pt").exists()

    calls.clear()

    def counted(cell, *args, **kwargs):
        calls.append(cell.name)
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(cell_module, "run_cell", counted)
    run = invoke(*SMALL, "--out", out)
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert calls == ["han-d2-s0", "han-d2-s1"]
    names = [r["cell"] for r in read_results(out)]
    assert names == ["fc-d2-s0", "fc-d2-s1", "han-d2-s0", "han-d2-s1"]
    assert files_of(out, ["fc-d2-s0", "fc-d2-s1"]) == finished
    resumed = json.loads((out / "cells" / "han-d2-s0" / "result.json").read_text())
    assert resumed["resumed_from"] == 2 and resumed["steps"] == 6
    fresh = json.loads((out / "cells" / "han-d2-s1" / "result.json").read_text())
    assert fresh["resumed_from"] is None


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_killed_compare_process_leaves_no_worker_behind_and_resumes(tmp_path):
    out = tmp_path / "cmp"
    assert SCRIPT.exists(), f"the console script is not installed next to {sys.executable}"
    command = [str(SCRIPT), *KILLED, "--workers", "2", "--out", str(out)]
    env = {**os.environ, **ENV}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 180
    workers: set[int] = set()
    try:
        while not results.exists() or len(results.read_bytes().splitlines()) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no cell finished"
            workers |= children_of(process.pid)
            time.sleep(0.01)
        workers |= children_of(process.pid)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert len(workers) >= 2, "the cells did not run in worker processes"
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "worker processes outlived the killed comparison"
        time.sleep(0.05)

    before = [r["cell"] for r in read_results(out)]
    assert 2 <= len(before) < KILLED_CELLS
    finished = files_of(out, before)
    run = invoke(*KILLED, "--workers", "1", "--out", out)
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert f"{len(before)} already finished" in run.stderr
    names = [r["cell"] for r in read_results(out)]
    assert len(names) == len(set(names)) == KILLED_CELLS
    assert names[: len(before)] == before
    assert files_of(out, before) == finished
