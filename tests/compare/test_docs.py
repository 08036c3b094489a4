"""What docs/compare.md shows in Python works as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "compare.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


def test_the_python_example_runs_a_comparison(tmp_path, monkeypatch, capsys):
    (example,) = [s for s in SNIPPETS if "compare(settings" in s]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/compare.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "('fc-d32-s0', True," in printed and "('han-d32-s0', False," in printed
    assert len((tmp_path / "reports" / "quick" / "results.jsonl").read_text().splitlines()) == 4


def test_the_pandas_example_gives_the_c2c_rate(tiny_comparison, tmp_path, monkeypatch):
    """The documented reader copes with what a kill or a torn write leaves in the file."""
    (example,) = [s for s in SNIPPETS if "results.jsonl" in s]
    assert "read_records" in example and "read_json" not in example
    shutil.copytree(tiny_comparison[0], tmp_path / "reports" / "compare")
    results = tmp_path / "reports" / "compare" / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    torn, not_utf8 = b'{"type":"cell","cell":"fc-d2', b'{"type":"cell\xff"}\n'
    results.write_bytes(b"".join([lines[0], not_utf8, *lines[1:], torn]))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example.replace("\ncells.groupby", "\nrate = cells.groupby"), "doc", "exec"),
         namespace)  # fmt: skip
    rate = namespace["rate"]
    assert rate[("fc", 32)] == 1.0 and rate[("han", 32)] == 0.0 and rate[("fc", 2)] == 0.0
