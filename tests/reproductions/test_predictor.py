"""predictor: Spearman's rho with a bootstrap interval, from a comparison's results.jsonl."""

from __future__ import annotations

import math

import numpy as np
import pytest

from variability.experiments.comparison import CompareSettings, ResultsFile, check_settings
from variability.experiments.reproductions.predictor import rank_correlation, spearman

from .conftest import assert_report, run_smoke

NAME = "predictor"


def by_hand(x, y):
    """Pearson's r of the ranks (no ties here, so ranks are plain orders)."""
    rx = np.argsort(np.argsort(x)).astype(float)
    ry = np.argsort(np.argsort(y)).astype(float)
    return float(np.corrcoef(rx, ry)[0, 1])


def test_a_monotone_set_has_rho_one_and_a_reversed_one_minus_one():
    x = np.array([0.0, 1e-4, 0.01, 0.2, 0.5, 0.9])
    up = rank_correlation(x, np.exp(x), resamples=300)
    assert up.rho == 1.0 and (up.low, up.high) == pytest.approx((1.0, 1.0), abs=1e-12)
    down = rank_correlation(x, -(x**3), resamples=300)
    assert down.rho == -1.0 and (down.low, down.high) == pytest.approx((-1.0, -1.0), abs=1e-12)
    # two cells: about half the resamples draw one cell twice (no rank correlation, left out)
    two = rank_correlation([0.0, 1.0], [0.0, 1.0], resamples=400)
    assert 140 < two.dropped < 260 and two.low == pytest.approx(1.0)


def test_rho_is_pearson_of_the_ranks_and_the_interval_is_seeded_and_contains_it():
    generator = np.random.default_rng(3)
    x = generator.random(40)
    y = x + generator.normal(0, 0.3, 40)
    result = rank_correlation(x, y, resamples=500, seed=7)
    assert result.rho == pytest.approx(by_hand(x, y), abs=1e-12)
    assert result.low < result.rho < result.high
    assert rank_correlation(x, y, resamples=500, seed=7) == result
    assert rank_correlation(x, y, resamples=500, seed=8).low != result.low
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def write_comparison(folder, cells):
    folder.mkdir(parents=True)
    settings = CompareSettings(params=800, depths=(2, 8), seeds=2)
    check_settings(folder, settings, fresh=False)
    results = ResultsFile(folder)
    for index, (family, depth, seed, v, test) in enumerate(cells):
        results.append(
            {
                "type": "cell", "cell": f"{family}-d{depth}-s{seed}", "family": family,
                "depth": depth, "seed": seed, "width": 4 + index, "params": 700,
                "output_variability": v, "network_collapsed": v <= 1e-3, "metric": "accuracy",
                "test": test,
            }
        )  # fmt: skip


def test_it_reads_a_finished_comparison_and_reports_rho_of_its_cells(tmp_path):
    cells = [
        (family, depth, seed, v, 0.5 + v / 3)
        for (family, depth, seed), v in zip(
            [(f, d, s) for f in ("fc", "lcw", "han") for d in (2, 8) for s in (0, 1)],
            [0.0, 0.001, 0.3, 0.2, 0.05, 0.9, 0.7, 0.6, 0.4, 0.45, 0.8, 0.1],
            strict=True,
        )
    ]
    write_comparison(tmp_path / "comparison", cells)
    run = run_smoke(NAME, tmp_path / "out", "--compare", tmp_path / "comparison")
    overall = run.results["table"][0]
    assert overall["cells"] == "all cells" and overall["n"] == 12
    assert overall["Spearman rho"] == 1.0
    assert run.results["claims"][0]["holds"] == "yes"
    assert len(run.records) == 12
    assert not (tmp_path / "out" / "compare").exists()  # nothing was trained


def test_the_smoke_run_trains_a_tiny_comparison_and_correlates_its_cells(smoke):
    run = smoke(NAME)
    cells = ResultsFile(run.folder / "compare").finished()
    assert len(cells) == len(run.records) == 6
    v = [c["output_variability"] for c in cells.values()]
    test = [c["test"] for c in cells.values()]
    overall = run.results["table"][0]
    assert overall["Spearman rho"] == pytest.approx(by_hand_with_ties(v, test), abs=1e-12)
    assert overall["95% CI low"] <= overall["95% CI high"]
    assert_report(run, ["variability_against_test"])


def by_hand_with_ties(x, y):
    """Pearson's r of average ranks."""

    def ranks(values):
        values = np.asarray(values, dtype=float)
        order = np.sort(values)
        return np.array([np.mean(np.flatnonzero(order == v)) for v in values])

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def test_the_interval_does_not_depend_on_the_order_the_cells_finished_in(tmp_path):
    generator = np.random.default_rng(5)
    cells = [
        (family, depth, seed, float(v), float(t))
        for (family, depth, seed), v, t in zip(
            [(f, d, s) for f in ("fc", "lcw", "han") for d in (2, 8) for s in (0, 1)],
            generator.random(12),
            generator.random(12),
            strict=True,
        )
    ]
    write_comparison(tmp_path / "a", cells)
    write_comparison(tmp_path / "b", cells[::-1])
    first = run_smoke(NAME, tmp_path / "out-a", "--compare", tmp_path / "a").results["table"]
    second = run_smoke(NAME, tmp_path / "out-b", "--compare", tmp_path / "b").results["table"]
    assert first == second
