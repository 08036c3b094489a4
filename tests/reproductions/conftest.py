"""Each reproduction's smoke run, once per session, through the command line (in this process).

The tests read what a user would: the printed table, ``results.json`` and the report folder.
Every smoke run uses one worker (no spawned processes: those cost seconds of imports each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from variability.cli.app import app

ENV = {"CI": "true", "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}


@dataclass
class Smoke:
    """A finished smoke run: what it printed and wrote."""

    folder: Path
    stdout: str
    stderr: str
    results: dict[str, Any]

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.results["records"]

    @property
    def html(self) -> str:
        return (self.folder / "report" / "index.html").read_text(encoding="utf-8")


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def run_smoke(name: str, folder: Path, *extra: object) -> Smoke:
    result = invoke("reproduce", name, "--smoke", "--workers", 1, "--out", folder, *extra)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    return Smoke(folder, result.stdout, result.stderr, results)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """``smoke(name)``: the reproduction's smoke run (run on first use, then shared)."""
    done: dict[str, Smoke] = {}

    def get(name: str) -> Smoke:
        if name not in done:
            done[name] = run_smoke(name, tmp_path_factory.mktemp(name))
        return done[name]

    return get


def assert_report(run: Smoke, figures: list[str]) -> None:
    """The report exists, shows the claims, the settings and deviations, and every figure."""
    html = run.html
    for heading in ("Published claims beside ours", "What we find", "Settings", "Deviations"):
        assert heading in html, heading
    for name in figures:
        png = run.folder / "report" / f"{name}.png"
        assert png.exists() and png.stat().st_size > 5000, name
        assert f'src="{name}.png"' in html, name
    assert run.results["format"] == "variability-reproduction"
    assert run.results["smoke"] is True
    assert run.results["seconds"] > 0
