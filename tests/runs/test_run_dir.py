"""The run directory: whole lines, the resume rule, and clear errors when it cannot be written."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from variability.runs import run_dir as run_dir_module
from variability.runs.run_dir import (
    MetricsFile,
    RunDirectory,
    RunDirError,
    json_safe,
    read_records,
)


def test_records_are_whole_json_lines_readable_by_pandas(tmp_path):
    metrics = MetricsFile(tmp_path / "metrics.jsonl")
    metrics.open()
    metrics.write([{"type": "step", "step": 1, "loss": 0.5}, {"type": "probe", "step": 1}])
    metrics.write([{"type": "step", "step": 2, "loss": float("nan"), "value": float("inf")}])
    metrics.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 1, 2]
    frame = pd.read_json(tmp_path / "metrics.jsonl", lines=True)
    assert list(frame["type"]) == ["step", "probe", "step"]
    assert json.loads(lines[2])["loss"] is None  # strict JSON: NaN and Inf become null


def test_json_safe_turns_numpy_scalars_and_nonfinite_values_plain():
    import numpy as np

    data = {"a": np.float32(0.5), "b": [np.int64(3), float("-inf")], "c": {"d": np.bool_(True)}}
    assert json_safe(data) == {"a": 0.5, "b": [3, None], "c": {"d": True}}


def test_a_torn_last_line_is_cut_when_the_file_is_reopened(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"type": "step", "step": 1}\n{"type": "step", "st')
    metrics = MetricsFile(path)
    assert metrics.open() == len('{"type": "step", "st')
    metrics.write([{"type": "step", "step": 2}])
    metrics.close()
    assert [r["step"] for r in read_records(path)] == [1, 2]


def test_resume_rule_drops_what_a_killed_segment_wrote_after_its_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [
        {"type": "start", "step": 0, "segment": 0},
        {"type": "step", "step": 10, "segment": 0},
        {"type": "step", "step": 20, "segment": 0},
        {"type": "step", "step": 30, "segment": 0},  # after the checkpoint of step 20
        {"type": "resume", "step": 20, "segment": 1},
        {"type": "step", "step": 30, "segment": 1},
        {"type": "step", "step": 40, "segment": 1},
        {"type": "resume", "step": 30, "segment": 2},
        {"type": "step", "step": 40, "segment": 2},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept = read_records(path)
    steps = [(r["type"], r["step"], r["segment"]) for r in kept if r["type"] == "step"]
    assert steps == [("step", 10, 0), ("step", 20, 0), ("step", 30, 1), ("step", 40, 2)]
    everything = read_records(path, superseded=True)
    assert len(everything) == len(rows)
    assert sum(bool(r.get("superseded")) for r in everything) == 2


def test_unwritable_location_is_a_clear_error_at_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        RunDirectory(blocker / "run").prepare()
    # the kernel refuses files here even to root
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        RunDirectory("/sys/kernel/variability-run").prepare()


def prepare_in_child(folder: Path, uid: int | None) -> str:
    """``RunDirectory(folder).prepare()`` in a forked child running as ``uid``; its message."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, try, report, leave without cleanup handlers
        code = 0
        try:
            os.close(read)
            if uid is not None:
                os.setgid(uid)
                os.setuid(uid)
            RunDirectory(folder).prepare()
            message = "prepared"
        except RunDirError as error:
            message = str(error)
        except BaseException as error:  # anything else: say what, so the test shows it
            message, code = f"unexpected {error!r}", 1
        os.write(write, message.encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        message = stream.read().decode()
    os.waitpid(pid, 0)
    return message


def test_read_only_folder_is_a_clear_error_at_start():
    """A folder the user may read but not write. Root writes through permission bits, so as
    root the check runs in a forked child that has become the unprivileged user "nobody"."""
    folder = Path(tempfile.mkdtemp(prefix="variability-readonly-", dir="/tmp"))
    try:
        folder.chmod(0o555)
        uid = 65534 if os.geteuid() == 0 else None
        message = prepare_in_child(folder / "run", uid)
        assert message.startswith("cannot create the run directory"), message
        assert "Permission denied" in message
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_metrics_path_taken_by_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "run" / "metrics.jsonl").mkdir(parents=True)
    with pytest.raises(RunDirError, match="is a folder"):
        RunDirectory(tmp_path / "run").prepare()


def test_full_disk_is_a_clear_error_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir_module, "free_bytes", lambda path: 3 * 2**20)
    with pytest.raises(RunDirError, match=r"only 3\.0 MB free .* needs about"):
        RunDirectory(tmp_path / "run").prepare(required_bytes=10 * 2**20)


def test_write_error_names_the_file_and_keeps_earlier_records(tmp_path):
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFile(path)
    metrics.open()
    metrics.write([{"type": "step", "step": 1}])
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, metrics._fd)  # from now on every write meets a full disk
    os.close(full)
    with pytest.raises(RunDirError, match="disk is full"):
        metrics.write([{"type": "step", "step": 2}])
    metrics.close()
    assert [r["step"] for r in read_records(path)] == [1]


def test_damaged_run_json_is_a_clear_error(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.prepare()
    run.run_file.write_text("{not json")
    with pytest.raises(RunDirError, match="damaged"):
        run.read_run()
    with pytest.raises(RunDirError, match="not a run directory"):
        RunDirectory(tmp_path / "elsewhere").read_run()
