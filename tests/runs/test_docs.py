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


def test_the_documented_pandas_resume_rule_matches_read_records(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "runs.md").read_text()
    (snippet,) = [
        b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "iterrows" in b
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
    resumed = RunSetup("runs/xor", resume_step=30)
    with Monitor(model, resumed, every=10, quiet=True, warn=False) as monitor:
        for step in range(31, 80):
            with monitor.step(step):
                model(x)
    namespace: dict = {}
    exec(compile(snippet, "docs/runs.md", "exec"), namespace)
    kept = namespace["records"]
    expected = read_records("runs/xor/metrics.jsonl")
    assert len(kept) == len(expected) < len(read_records("runs/xor/metrics.jsonl", superseded=True))
    assert list(zip(kept["type"], kept["step"], kept["segment"], strict=True)) == [
        (r["type"], r["step"], r["segment"]) for r in expected
    ]
