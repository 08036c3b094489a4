"""What README.md and docs/runs.md show about runs works as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from variability.cli.app import app
from variability.runs import Monitor, MonitorWarning, RunSetup
from variability.runs.run_dir import read_records

ROOT = Path(__file__).resolve().parents[2]


def section(path: Path, title: str) -> str:
    return path.read_text().split(title, 1)[1].split("\n## ", 1)[0]


def test_readme_run_commands_run_as_written(tmp_path, monkeypatch):
    text = section(ROOT / "README.md", "## Watch a training run")
    (python,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (commands,) = re.findall(r"<!-- test:runs -->\n```bash\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(MonitorWarning, match="step 10: .* units at site 3 are dead"):
        exec(compile(python, "README.md", "exec"), {})
    events = read_records(tmp_path / "runs" / "watch" / "metrics.jsonl")
    dead = [r for r in events if r["type"] == "event" and r["kind"] == "dead_units"]
    assert [(r["step"], r["site"]) for r in dead] == [(10, "3")] and dead[0]["value"] > 0.5
    for command in commands.strip().splitlines():
        program, *args = command.split()
        assert program == ".venv/bin/variability"
        done = CliRunner().invoke(app, args, env={"CI": "true"})
        assert done.exit_code == 0, done.output
    assert (tmp_path / "runs" / "han8" / "model.pt").exists()
    assert (tmp_path / "runs" / "watch" / "report" / "index.html").exists()


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
