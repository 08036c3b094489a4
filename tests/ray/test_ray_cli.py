"""``variability compare --executor ray --ray-address`` against a cluster started with ``ray
start --head``: Ctrl-C (``kill -INT``) mid-run keeps the finished models, and the rerun trains
only the missing ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import LOOPBACK_ENV

SCRIPT = Path(sys.executable).parent / "variability"
ENV = {**os.environ, **LOOPBACK_ENV, "CI": "true", "NO_COLOR": "1", "COLUMNS": "200"}
COMPARISON = [
    "compare", "--depths", "2,6", "--families", "fc,han", "--seeds", "2", "--steps", "60",
    "--every", "20", "--batch-size", "64", "--tolerance", "0.25",
]  # fmt: skip
CELLS = 8
TIMEOUT = 300.0
"""Seconds a command may take on a busy 2-core machine (a few are usual)."""


def as_in_a_terminal() -> None:
    """Ctrl-C's default disposition in the command, as a terminal's foreground job has it: a
    test run started in the background of a script inherits SIGINT ignored, which Python keeps."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def lines(results: Path) -> list[str]:
    if not results.exists():
        return []
    return [line for line in results.read_text().splitlines() if line.endswith("}")]


def test_an_interrupted_ray_comparison_reruns_only_the_missing_models(ray_cluster, tmp_path):
    out = tmp_path / "cmp"
    command = [str(SCRIPT), *COMPARISON, "--executor", "ray", "--ray-address", ray_cluster]
    command += ["--out", str(out)]
    first = subprocess.Popen(
        command,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not lines(out / "results.jsonl"):  # the first model is written: interrupt
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "no model finished in time"
            time.sleep(0.1)
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=TIMEOUT)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 130, stderr
    assert f"on Ray at {ray_cluster}: 1 node, 2 CPUs, 0 GPUs" in stderr  # shown once, first
    assert "run the same command again to resume" in stderr
    kept = lines(out / "results.jsonl")
    assert 1 <= len(kept) < CELLS, stderr

    second = subprocess.run(
        command, env=ENV, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert second.returncode == 0, second.stderr
    assert f"{len(kept)} already finished in {out}, resuming" in second.stderr
    assert f"{CELLS - len(kept)} models trained in" in second.stderr
    final = lines(out / "results.jsonl")
    assert final[: len(kept)] == kept  # the first run's records, untouched
    names = [json.loads(line)["cell"] for line in final]
    assert len(names) == len(set(names)) == CELLS
    assert (out / "report" / "index.html").exists()
