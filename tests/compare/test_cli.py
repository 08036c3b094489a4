"""`variability compare` through CliRunner: what it prints and writes, reruns, and refusals."""

from __future__ import annotations

import json
import re

from variability.arch import DEFAULT_TOLERANCE, param_count
from variability.experiments.comparison import QUICK, CompareSettings, plan_cells

from .conftest import TINY, TINY_CELLS, assert_one_line_error, invoke, read_results


def snapshot(folder):
    """Every file under the cells' run directories: modification time and size."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted((folder / "cells").rglob("*"))
        if p.is_file()
    }


def test_a_finished_comparison_prints_its_table_and_writes_every_file(tiny_comparison):
    out, run = tiny_comparison
    assert f"{TINY_CELLS} models (FC, Han at depths 2,32, 3 seeds) at 640 parameters" in run.stderr
    row = re.compile(r"^ *(FC|Han) +(\d+) +(\d+) +([\d,]+) +(\S+) +(\d of \d) +(\S+ ± \S+) ")
    rows = {m.groups()[:6] for m in map(row.match, run.stdout.splitlines()) if m}
    assert len(rows) == 4, run.stdout  # one line per family and depth, none wrapped
    assert ("FC", "32", "4", "637", "0", "3 of 3") in rows
    assert next(r for r in rows if r[:2] == ("Han", "32"))[:4] == ("Han", "32", "10", "661")
    assert "FC collapsed to a constant at initialisation in 3 of 3 seeds at depth 32." in run.stdout
    assert "Han did not collapse at initialisation at any depth (2, 32)." in run.stdout
    assert run.stdout.rstrip().endswith(f"report: {out / 'report' / 'index.html'}")
    # the baseline's row, and the legend under the table
    assert re.search(r"^ *baseline: majority class +(- +){5}0\.602 +- *$", run.stdout, re.M)
    assert "\nparams: exact parameter count; V init: " in run.stdout
    # in a log (stderr is not a terminal), a plain line per finished model
    done = re.findall(
        r"^models (\d+)/12 after \d+ s  (\S+) test accuracy \d\.\d{3} in", run.stderr, re.M
    )
    assert [int(n) for n, _ in done] == list(range(1, 13))
    assert sorted(name for _, name in done) == sorted(r["cell"] for r in read_results(out))

    records = read_results(out)
    names = [r["cell"] for r in records]
    assert len(set(names)) == len(names) == TINY_CELLS
    stored = json.loads((out / "compare.json").read_text())
    expected = CompareSettings(
        params=640,
        depths=(2, 32),
        families=("fc", "han"),
        steps=4,
        every=2,
        batch_size=64,
    )
    assert stored["settings"] == expected.to_json()
    for name in names:
        run_dir = out / "cells" / name
        result = json.loads((run_dir / "result.json").read_text())
        assert (run_dir / "model.pt").exists() and result["steps"] == 4
        record = next(r for r in records if r["cell"] == name)
        assert record["test"] == result["test"] and record["best_step"] == result["best_step"]


def test_a_rerun_with_the_same_options_trains_nothing_and_redraws_the_report(tiny_copy):
    results = (tiny_copy / "results.jsonl").read_bytes()
    files = snapshot(tiny_copy)
    figures = len(list((tiny_copy / "report").glob("*.png")))
    run = invoke("compare", *TINY, "--workers", "1", "--self-contained", "--out", tiny_copy)
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert f"{TINY_CELLS} already finished in {tiny_copy}, resuming" in run.stderr
    assert "0 models trained" in run.stderr
    assert (tiny_copy / "results.jsonl").read_bytes() == results
    assert snapshot(tiny_copy) == files
    assert "3 of 3" in run.stdout
    # --self-contained is not a setting of the comparison: one file with the images inside
    assert [p.name for p in (tiny_copy / "report").iterdir()] == ["index.html"]
    html = (tiny_copy / "report" / "index.html").read_text()
    assert html.count('src="data:image/png;base64,') == figures == 10  # Han's AR: a sentence


def test_a_rerun_with_other_settings_is_refused_and_changes_nothing(tiny_copy):
    results = (tiny_copy / "results.jsonl").read_bytes()
    settings = (tiny_copy / "compare.json").read_bytes()
    run = invoke("compare", *TINY, "--steps", "5", "--lr", "0.1", "--out", tiny_copy)
    line = assert_one_line_error(
        run, str(tiny_copy), "other settings", "steps 4 -> 5", "lr 0.01 -> 0.1", "--fresh"
    )
    assert "families" not in line  # only what differs is named
    assert (tiny_copy / "results.jsonl").read_bytes() == results
    assert (tiny_copy / "compare.json").read_bytes() == settings


def test_fresh_starts_the_folder_over_with_the_new_settings(tiny_copy):
    run = invoke(
        "compare", "--depths", "2", "--families", "fc", "--seeds", "1", "--steps", "2",
        "--tolerance", "0.1", "--workers", "1", "--fresh", "--quiet", "--out", tiny_copy,
    )  # fmt: skip
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert run.stderr == ""  # --quiet
    assert [r["cell"] for r in read_results(tiny_copy)] == ["fc-d2-s0"]
    assert sorted(p.name for p in (tiny_copy / "cells").iterdir()) == ["fc-d2-s0"]
    assert json.loads((tiny_copy / "compare.json").read_text())["settings"]["steps"] == 2


def test_a_budget_a_family_cannot_fit_is_refused_before_anything_runs(tmp_path):
    """Depth 64 at width 1: 3 + 63 * 2 + 2 = 131 parameters for FC, 3 + 2 * 63 + 2 = 131 for
    Han, 31% over a budget of 100 (budgets from ceil(131 / 1.25) = 105 would admit them); depth
    2 fits both (FC width 8: 105, Han width 16: 97)."""
    out = tmp_path / "never"
    run = invoke(
        "compare", "--params", "100", "--depths", "2,64", "--families", "fc,han",
        "--tolerance", "0.25", "--out", out,
    )  # fmt: skip
    assert_one_line_error(
        run,
        "fc at depth 64: even its narrowest model has 131 (31.0% over); "
        "nearest feasible budget 105",
        "han at depth 64",
    )
    assert "depth 2:" not in run.stderr
    assert not out.exists()


def test_a_budget_missed_by_more_than_the_tolerance_names_the_nearest_one(tmp_path):
    """FC at depth 8: width 10 has 3*10 + 7*(10*10+10) + 11 = 811 parameters, 9.9% under 900,
    and width 11 has 969, 7.7% over (both outside 5%). Width 10 serves budgets up to
    floor(811 / 0.95) = 853, width 11 from ceil(969 / 1.05) = 923: the nearest is 923 (23 away,
    against 47)."""
    out = tmp_path / "never"
    run = invoke(
        "compare", "--params", "900", "--depths", "8", "--families", "fc",
        "--tolerance", "0.05", "--out", out,
    )  # fmt: skip
    assert_one_line_error(
        run,
        "within 5% of 900 parameters",
        "fc at depth 8: the nearest models have 811 (9.9% under) and 969 (7.7% over); "
        "nearest feasible budget 923",
        "--tolerance 0.09",
    )
    assert not out.exists()


def test_bad_options_are_one_line_errors(tmp_path):
    out = tmp_path / "never"
    cases = [
        (["--depths", "2,x"], ["--depths takes integers separated by commas, got '2,x'"]),
        (["--families", "fc,mlp"], ["unknown family mlp", "known: fc, lcw, han"]),
        (["--seeds", "0"], ["seeds must be an integer >= 1, got 0"]),
        (["--depths", "2,2"], ["depths repeat"]),
        (["--optimizer", "rmsprop"], ["unknown optimizer 'rmsprop'"]),
        (["--tolerance", "1.5"], ["tolerance must be at least 0 and below 1"]),
        (["--task", "mnist"], ["mnist"]),
        (["--workers", "0"], ["--workers must be at least 1"]),
    ]
    for options, fragments in cases:
        assert_one_line_error(invoke("compare", *options, "--out", out), *fragments)
    assert not out.exists()


def test_help_shows_the_defaults_the_choices_and_the_one_tolerance():
    run = invoke("compare", "--help")
    assert run.exit_code == 0
    text = re.sub(r"[\s│]+", " ", run.stdout)
    default = QUICK
    assert f"[default: {default.params}]" in text and "(800)" not in text
    assert f"[default: {','.join(map(str, default.depths))}]" in text
    assert "[default: reports/compare]" in text
    # choices shown as choices
    assert "<fc|lcw|han>,..." in text and "<adam|sgd>" in text
    assert "checkerboard, digits, diabetes, breast_cancer or friedman1" in text
    # one tolerance, stated once, for every comparison
    assert f"[default: {DEFAULT_TOLERANCE:g}]" in text and "or 0.25 in the quick" not in text
    assert "<bool>" not in text
    # the docstring's paragraph flows: none of its lines ends where the source wrapped it
    assert "activation ratio, collapse to constants), trained" in text


def test_the_quick_comparison_keeps_the_one_tolerance():
    """Naming --params or --depths changes nothing but them: the tolerance stays 5%, and the
    quick comparison meets it: every family within 5% of 2,857 parameters at depths 2 and 6.
    Each width is both the nearest count and the largest within the budget, so the plan is the
    same under either reading of the rule (docs/compare.md)."""
    assert CompareSettings() == QUICK and QUICK.tolerance == DEFAULT_TOLERANCE == 0.05
    sizes = {(c.family, c.depth): (c.width, c.params) for c in plan_cells(QUICK, 2, 1)}
    assert sizes == {
        ("fc", 2): (51, 2857), ("lcw", 2): (51, 2806), ("han", 2): (476, 2857),
        ("fc", 6): (23, 2853), ("lcw", 6): (23, 2738), ("han", 6): (204, 2857),
    }  # fmt: skip
    for (family, depth), (width, count) in sizes.items():
        assert abs(count - QUICK.params) <= 0.05 * QUICK.params
        above = param_count(family, 2, 1, depth, width + 1)
        assert QUICK.params - count <= above - QUICK.params  # nearer than the next width up


def test_a_named_budget_is_refused_outside_five_percent_by_default(tmp_path):
    """FC at depth 8 near 720: width 9 has 3*9 + 7*(9*9 + 9) + 10 = 667 parameters (7.4% under)
    and width 10 has 811 (12.6% over), so the 5% rule refuses it unless --tolerance is given."""
    out = tmp_path / "never"
    run = invoke("compare", "--params", "720", "--depths", "8", "--families", "fc", "--out", out)
    assert_one_line_error(
        run,
        "within 5% of 720 parameters",
        "fc at depth 8: the nearest models have 667 (7.4% under) and 811 (12.6% over)",
        "--tolerance 0.08",
    )
    assert not out.exists()


def test_report_draws_a_comparison_folder_from_the_models_finished_so_far(tiny_copy):
    results = tiny_copy / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-3]))  # three models not finished yet
    out = tiny_copy / "partial-report"
    run = invoke("report", tiny_copy, "--out", out)
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert f"{TINY_CELLS - 3} of {TINY_CELLS} models finished" in run.stderr
    assert run.stdout.strip() == str(out / "index.html")
    page = (out / "index.html").read_text()
    assert "637" in page and "661" in page  # FC and Han at depth 32: exact counts in the table
    assert (out / "variability_and_c2c.png").stat().st_size > 0


def test_report_refuses_a_comparison_with_no_finished_model(tiny_copy):
    (tiny_copy / "results.jsonl").write_text("")
    run = invoke("report", tiny_copy)
    assert_one_line_error(run, "no finished model yet")


def test_the_papers_protocol_and_the_published_layout(tmp_path):
    """HanNet 20 x 30 in the published layout is 3,032 parameters with the paper's two outputs
    (90 + 930 + 17 x 60 + 930 + 62); each cell trains by the paper's protocol."""
    out = tmp_path / "paper"
    run = invoke(
        "compare", "--protocol", "paper", "--han-layout", "published", "--params", "3032",
        "--depths", "20", "--families", "han", "--seeds", "1", "--steps", "6", "--every", "3",
        "--out", out,
    )  # fmt: skip
    assert run.exit_code == 0, (run.stderr, run.exception)
    settings = json.loads((out / "compare.json").read_text())["settings"]
    assert (settings["protocol"], settings["han_layout"]) == ("paper", "published")
    assert (settings["optimizer"], settings["lr"], settings["batch_size"]) == ("sgd", 0.05, 100)
    assert settings["steps"] == 6  # given explicitly: wins over the protocol's 40,000
    (record,) = read_results(out)
    assert (record["width"], record["params"]) == (30, 90 + 930 + 17 * 60 + 930 + 62)
    cell = json.loads((out / "cells" / record["cell"] / "run.json").read_text())
    assert cell["model"]["spec"]["dense_layers"] == [1, 2, 20] and cell["task"]["d_out"] == 2
    assert cell["config"]["sampling"] == "independent" and cell["config"]["momentum"] == 0.9
    assert cell["config"]["lr_milestones"] == [0.5, 0.7, 0.9]


def test_settings_written_before_protocols_existed_still_resume(tiny_copy):
    """compare.json keeps the defaults of settings added later out, so a comparison started
    before them matches the same options now and resumes without training anything."""
    stored = json.loads((tiny_copy / "compare.json").read_text())["settings"]
    assert "protocol" not in stored and "han_layout" not in stored
    run = invoke("compare", *TINY, "--out", tiny_copy)
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert "0 models trained" in run.stderr
