"""A comparison's folder: its settings file, ``results.jsonl``, the cells' runs and a lock.

compare.json     the settings (a rerun with other settings is refused)
results.jsonl    one line per finished cell, appended and synced as each finishes
cells/NAME/      each cell's run directory (run.json, metrics.jsonl, model.pt, ...)
report/          the comparison report (index.html and PNG figures)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from variability.atomic import atomic_file
from variability.experiments.comparison.settings import CompareError, CompareSettings
from variability.runs.jsonl import read_json_lines

RESULTS = "results.jsonl"
SETTINGS = "compare.json"
CELLS = "cells"
REPORT = "report"
LOCK = ".lock"
FORMAT = "variability-comparison"
FORMAT_VERSION = 1


class ResultsFile:
    """``results.jsonl``: one line per finished cell, appended and synced as each finishes."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / RESULTS
        self.note: str | None = None  # what finished() skipped, in a sentence

    def finished(self) -> dict[str, dict[str, Any]]:
        """Finished cells by name; a torn line (a kill mid-write, bytes that are not UTF-8) is
        not a record: it is skipped (``note`` says so) and its cell runs again."""
        lines = read_json_lines(self.path)
        self.note = lines.note()
        return {
            record["cell"]: record
            for record in lines.records
            if record.get("type") == "cell" and "cell" in record
        }

    def append(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    text = "\n" + text  # a torn line from a killed run stays on its own line
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def check_settings(folder: Path, settings: CompareSettings, fresh: bool) -> None:
    """Record the settings, or check that the comparison in ``folder`` was started with them.

    ``fresh`` deletes what a previous comparison left there (its settings, results and cells;
    nothing else) and starts over.
    """
    path = folder / SETTINGS
    wanted: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "settings": settings.to_json(),
    }
    if fresh:
        for name in (RESULTS, SETTINGS):
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / CELLS, ignore_errors=True)
    elif path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            existing = None
        if not isinstance(existing, dict) or existing.get("format") != FORMAT:
            raise CompareError(
                f"{path} is not a comparison's settings file; use another --out, or --fresh to "
                "start a comparison there"
            )
        if existing != wanted:
            old = existing.get("settings") or {}
            new = wanted["settings"]
            differ = [
                f"{k} {_show(old.get(k))} -> {_show(new.get(k))}"
                for k in {**new, **old}  # a setting left out at its default is in one of them
                if old.get(k) != new.get(k)
            ]
            raise CompareError(
                f"{folder} holds a comparison made with other settings "
                f"({'; '.join(differ) or 'another format version'}); rerun with its settings "
                "to resume it, use another --out, or add --fresh to start it over"
            )
        return
    elif (folder / RESULTS).exists() or (folder / CELLS).exists():
        raise CompareError(
            f"{folder} holds comparison results but no {SETTINGS}; use another --out, or --fresh "
            "to start over there"
        )
    with atomic_file(path) as stream:
        stream.write(json.dumps(wanted, indent=2) + "\n")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "default" if value is None else str(value)


def read_settings(folder: Path) -> CompareSettings:
    """The settings a comparison folder was made with."""
    path = Path(folder) / SETTINGS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return CompareSettings.from_json(data["settings"])
    except FileNotFoundError:
        raise CompareError(f"{folder} holds no comparison (no {SETTINGS})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise CompareError(f"{path} cannot be read ({type(error).__name__})") from None


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the comparison folder: a second compare writing into it at once is refused."""
    handle = (folder / LOCK).open("w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompareError(
                f"another `variability compare` is writing to {folder}; wait for it, or use "
                "another --out"
            ) from None
        yield
    finally:
        handle.close()


__all__ = [
    "CELLS",
    "FORMAT",
    "FORMAT_VERSION",
    "REPORT",
    "RESULTS",
    "SETTINGS",
    "ResultsFile",
    "check_settings",
    "folder_lock",
    "read_settings",
]
