"""What docs/runs.md shows about runs works as written (the README: tests/test_readme.py)."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from variability.runs import Monitor, RunSetup

ROOT = Path(__file__).resolve().parents[2]


def section(path: Path, title: str) -> str:
    return path.read_text().split(title, 1)[1].split("\n## ", 1)[0]


def test_the_documented_readers_cope_with_a_resumed_run_and_damaged_lines(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "runs.md").read_text()
    (snippet,) = [
        b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "superseded=True" in b
    ]
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.rand(32, 2)
    with Monitor(model, "runs/xor", every=10, quiet=True, warn=False) as monitor:
        for step in range(60):  # killed at 60: its last checkpoint was at step 30
            with monitor.step(step):
                model(x)
            monitor.log(loss=1.0)
    metrics = tmp_path / "runs" / "xor" / "metrics.jsonl"
    with metrics.open("ab") as stream:
        stream.write(b'{"type":"step","step":5\xff}\n{"type":"probe","st')  # torn by the kill
    resumed = RunSetup("runs/xor", resume_step=30)
    with Monitor(model, resumed, every=10, quiet=True, warn=False) as monitor:
        for step in range(31, 80):
            with monitor.step(step):
                model(x)
            monitor.log(loss=1.0)
    namespace: dict = {}
    exec(compile(snippet, "docs/runs.md", "exec"), namespace)
    records, everything, steps = namespace["records"], namespace["everything"], namespace["steps"]
    assert [r["type"] for r in records].count("resume") == 1
    assert len(records) < len(everything)
    assert {r["step"] > 30 for r in everything if r.get("superseded")} == {True}
    assert list(steps["step"]) == [0, 10, 20, 30, 40, 50, 60, 70, 79]  # 79: written at close


def test_no_doc_reads_a_jsonl_file_with_pandas():
    """pandas.read_json stops at a torn line: the docs show the project's readers instead."""
    for doc in ("README.md", "docs/runs.md", "docs/compare.md"):
        for snippet in re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), flags=re.S):
            assert "read_json" not in snippet, (doc, snippet)
