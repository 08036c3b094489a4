"""`variability reproduce`: names, refusals in one line with exit code 2."""

from __future__ import annotations

import re

from .conftest import invoke


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_reproduction():
    result = invoke("reproduce", "--help")
    assert result.exit_code == 0
    for name in ("variability-depth", "han-checkerboard", "lcw-sigmoid", "redundancy", "predictor"):
        assert name in result.stdout


def test_bad_names_and_options_are_one_line_errors(tmp_path):
    assert_one_line_error(invoke("reproduce", "nonsense"), "unknown reproduction 'nonsense'")
    assert_one_line_error(
        invoke("reproduce", "redundancy", "--compare", tmp_path), "--compare applies to"
    )
    assert_one_line_error(
        invoke("reproduce", "redundancy", "--seeds", 0, "--out", tmp_path), "seeds must be"
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(
        invoke("reproduce", "redundancy", "--smoke", "--out", blocker / "sub"), "is a file"
    )
    assert_one_line_error(
        invoke("reproduce", "predictor", "--compare", tmp_path / "missing", "--out", tmp_path),
        "holds no comparison",
    )
    assert not (tmp_path / "report").exists()


def test_the_docs_describe_every_reproduction_and_the_readme_links_them():
    from pathlib import Path

    from variability.experiments.reproductions import REPRODUCTIONS

    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "reproductions.md").read_text(encoding="utf-8")
    for name in REPRODUCTIONS:
        assert f"`variability reproduce {name}`" in docs, name
    for image in re.findall(r"\]\((images/reproductions/[^)]+)\)", docs):
        assert (root / "docs" / image).read_bytes().startswith(b"\x89PNG"), image
    assert "(docs/reproductions.md)" in (root / "README.md").read_text(encoding="utf-8")
