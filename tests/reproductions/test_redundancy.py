"""redundancy at smoke size: curves from the Monitor's records, and the independence baseline."""

from __future__ import annotations

import numpy as np
import pytest

from variability.experiments.reproductions.redundancy import independent_level

from .conftest import assert_report

NAME = "redundancy"


def test_redundancy_curves_cover_every_hidden_layer_at_every_recorded_step(smoke):
    run = smoke(NAME)
    assert {r["family"] for r in run.records} == {"fc", "han"}
    for record in run.records:
        steps = sorted({p["step"] for p in record["redundancy"]})
        assert steps == [1, 5, 10, 15, 20]
        layers = sorted({p["layer"] for p in record["redundancy"]})
        assert layers == list(range(1, record["depth"] + 1))
        assert all(0 <= p["redundancy"] <= 1 for p in record["redundancy"])
        assert record["params"] <= 1200
    han = next(r for r in run.records if r["family"] == "han")
    width = han["width"]
    assert han["params"] == 65 * width + 2 * width * (han["depth"] - 1) + (width + 1) * 10
    assert_report(run, ["redundancy", "training_loss"])


def test_the_independence_baseline_is_the_mean_absolute_correlation_of_independent_units():
    generator = np.random.default_rng(0)
    samples = 400
    values = []
    for _ in range(3000):
        a, b = generator.standard_normal((2, samples))
        values.append(abs(np.corrcoef(a, b)[0, 1]))
    assert independent_level(samples) == pytest.approx(np.mean(values), rel=0.03)
