"""Lines of results.jsonl and metrics.jsonl that are not records: skipped and reported.

Some file systems leave bytes that are not UTF-8 where a write was torn; a kill leaves a line
cut short. Neither may end `report` or `compare` in a traceback, nor hide the records around it.
"""

from __future__ import annotations

from variability.runs.run_dir import read_records

from .conftest import TINY, TINY_CELLS, invoke

NOT_UTF8 = b'{"type":"cell","cell":"fc-d2-s\xff\xfe"}\n'
TORN = b'{"type":"cell","cell":"han-d3'


def damage(path, at: int, *lines: bytes) -> None:
    """Insert ``lines`` before line ``at`` (from 1)."""
    kept = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*kept[: at - 1], *lines, *kept[at - 1 :]]))


def test_report_and_compare_skip_and_name_unreadable_lines_of_results(tiny_copy):
    results = tiny_copy / "results.jsonl"
    damage(results, 2, NOT_UTF8, TORN + b"\n", b"\xc3\x28 not utf-8 at all\n")
    drawn = invoke("report", tiny_copy)
    assert drawn.exit_code == 0, (drawn.stderr, drawn.exception)
    assert f"note: skipped lines 2, 3, 4 of {results}: not a readable record" in drawn.stderr
    assert f"{TINY_CELLS} of {TINY_CELLS} models finished" in drawn.stderr

    rerun = invoke("compare", *TINY, "--workers", "1", "--out", tiny_copy)
    assert rerun.exit_code == 0, (rerun.stderr, rerun.exception)
    assert "0 models trained" in rerun.stderr  # every model's own line was readable
    assert f"note: skipped lines 2, 3, 4 of {results}" in rerun.stderr
    assert "Traceback" not in rerun.stderr + drawn.stderr


def test_metrics_lines_that_are_not_utf8_are_skipped_and_named(tiny_copy):
    run = tiny_copy / "cells" / "fc-d2-s0"
    metrics = run / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    mangled = lines[3].replace(b'"type":"', b'"type":"\xff', 1)
    metrics.write_bytes(b"".join([*lines[:3], mangled, b"\x80\x81\n", *lines[4:]]))
    records = read_records(metrics)
    assert len(records) == len(lines) - 1  # the mangled record is not read as one
    assert all("\ufffd" not in str(r) for r in records)
    drawn = invoke("report", run, "--out", tiny_copy / "run-report")
    assert drawn.exit_code == 0, (drawn.stderr, drawn.exception)
    assert f"note: skipped lines 4, 5 of {metrics}: not a readable record" in drawn.stderr
    assert (tiny_copy / "run-report" / "index.html").exists()
