"""variability-depth at smoke size: counts by the formulas, C2C from the per-seed verdicts."""

from __future__ import annotations

import json
import re

import pandas as pd

from variability.experiments.reproductions.variability_depth import peak_shape

from .conftest import assert_report, invoke

NAME = "variability-depth"


def fc_count(depth: int, width: int, d_in: int = 2, d_out: int = 1) -> int:
    return (d_in + 1) * width + (depth - 1) * (width * width + width) + (width + 1) * d_out


def han_count(depth: int, width: int, d_in: int = 2, d_out: int = 1) -> int:
    return (d_in + 1) * width + 2 * width * (depth - 1) + (width + 1) * d_out


def count(family: str, depth: int, width: int) -> int:
    return han_count(depth, width) if family == "han" else fc_count(depth, width)


def test_every_model_has_the_largest_width_within_the_budget_and_the_formula_s_count(smoke):
    run = smoke(NAME)
    assert {r["kind"] for r in run.records} == {"relu", "abs", "han"}
    for record in run.records:
        family, depth, width = record["family"], record["depth"], record["width"]
        assert record["params"] == count(family, depth, width)
        assert record["params"] <= record["budget"] < count(family, depth, width + 1)
    # the printed table shows each size with its exact count and share of the budget
    for record in run.records:
        share = f"{100 * record['params'] / record['budget']:.1f}%"
        assert f"{record['params']:,} ({share})" in run.stdout


def test_the_c2c_column_counts_the_per_seed_verdicts(smoke):
    run = smoke(NAME)
    records = pd.DataFrame(run.records)
    # each verdict is the output's V against the collapse level
    assert (records["collapsed"] == (records["output_variability"] <= 1e-3)).all()
    assert records["collapsed"].any(), "the smoke sizes include a ReLU net that collapses"
    assert records["output_variability"].between(0, 1).all() and (records["v3"] >= 0).all()
    models = {"ReLU": "relu", "abs": "abs", "Han": "han"}
    rows = 0
    for row in run.results["table"]:
        collapsed, seeds = map(int, row["C2C"].split("/"))
        group = records[
            (records["kind"] == models[row["model"]]) & (records["depth"] == row["depth"])
        ]
        assert seeds == len(group) == 3
        assert collapsed == int(group["collapsed"].sum())
        assert 0 <= collapsed / seeds <= 1
        rows += 1
    assert rows == 9
    # the ReLU claim row lists each depth's rate, computed from the same verdicts
    claim = next(c for c in run.results["claims"] if c["claim"].startswith("C2C sets in"))
    for depth, rate in re.findall(r"depth (\d+): ([\d.]+)", claim["ours"]):
        group = records[(records["kind"] == "relu") & (records["depth"] == int(depth))]
        assert float(rate) == round(group["collapsed"].mean(), 2)


def test_the_report_shows_the_claims_and_the_figure(smoke):
    run = smoke(NAME)
    assert_report(run, ["variability_depth"])
    assert "abs resists C2C better than ReLU" in run.html


def test_rises_peaks_and_falls_only_for_an_interior_peak():
    def rows(values):
        return pd.DataFrame({"depth": [1, 2, 4, 8][: len(values)], "V3 mean": values})

    assert peak_shape(rows([0.1, 0.3, 0.2])) == (2, True)
    assert peak_shape(rows([0.1, 0.2, 0.3])) == (4, False)  # still rising at the deepest
    assert peak_shape(rows([0.3, 0.2, 0.1])) == (1, False)  # falls from the start


def test_two_worker_processes_give_the_same_records_as_one(smoke, tmp_path):
    """The spawned workers' path: jobs pickle, results come back in job order, and every model's
    figures are those of the in-process run (each model's randomness is its own seed)."""
    one = {(r["kind"], r["depth"], r["seed"]): r for r in smoke(NAME).records}
    result = invoke(
        "reproduce", NAME, "--smoke", "--seeds", 1, "--workers", 2, "--out", tmp_path, "--quiet"
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    two = json.loads((tmp_path / "results.json").read_text())["records"]
    assert len(two) == 9
    for record in two:
        assert record == one[(record["kind"], record["depth"], record["seed"])]
