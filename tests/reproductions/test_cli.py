"""`variability reproduce`: names, refusals in one line with exit code 2."""

from __future__ import annotations

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
