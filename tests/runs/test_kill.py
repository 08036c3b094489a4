"""A real `variability train` process killed with SIGKILL mid-training, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from typer.testing import CliRunner

from variability.cli.app import app
from variability.runs.run_dir import read_records

ARGS = [
    "train",
    "--family", "fc",
    "--depth", "2",
    "--width", "8",
    "--steps", "1000",
    "--every", "20",
    "--eval-every", "100",
    "--batch-size", "32",
    "--quiet",
]  # fmt: skip


def latest_eval_step(path) -> int:
    if not path.exists():
        return -1
    steps = [-1]
    for line in path.read_bytes().splitlines():
        if b'"type":"eval"' in line:
            steps.append(json.loads(line)["step"])
    return max(steps)


def test_sigkill_mid_training_loses_nothing_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "variability", *ARGS, "--out", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while latest_eval_step(metrics) < 200:  # checkpoints exist, training goes on
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
        before = metrics.read_bytes()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "result.json").exists(), "the run finished before it was killed"

    after = metrics.read_bytes()
    assert after.startswith(before)  # nothing written before the kill is lost
    lines = after.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    records = [json.loads(line) for line in complete]  # every complete line parses
    killed_at = max(r["step"] for r in records)
    assert 200 <= killed_at < 1000
    assert tail == b"" or not tail.endswith(b"}")  # at most a torn line without newline

    result = CliRunner().invoke(app, [*ARGS, "--out", str(out), "--resume"], env={"CI": "true"})
    assert result.exit_code == 0, result.output
    assert "accuracy: train" in result.stdout
    assert (out / "result.json").exists() and (out / "model.pt").exists()
    final = metrics.read_bytes()
    assert final.startswith(after.rstrip(b"\n").rsplit(b"\n", 1)[0])  # the old lines stay
    kept = read_records(metrics)
    resume = [r for r in kept if r["type"] == "resume"]
    assert len(resume) == 1 and resume[0]["step"] % 100 == 0 and resume[0]["step"] <= killed_at
    probes = Counter((r["step"], r["inputs"], r["site"]) for r in kept if r["type"] == "probe")
    assert set(probes.values()) == {1}  # after the resume rule: each step's figures once
    steps = sorted({step for step, _, _ in probes})
    assert steps == [1, *range(20, 1001, 20)]
    assert [r["type"] for r in kept].count("finish") == 1
