"""lcw-sigmoid at smoke size: per-layer figures from the runs' records; the shift LCW removes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from .conftest import assert_report

NAME = "lcw-sigmoid"


def test_every_run_has_a_row_per_hidden_layer_read_from_its_metrics(smoke):
    run = smoke(NAME)
    assert {(r["family"], r["depth"]) for r in run.records} == {
        (f, d) for f in ("fc", "lcw") for d in (3, 6)
    }
    for record in run.records:
        assert [layer["layer"] for layer in record["layers"]] == list(range(1, record["depth"] + 1))
        # the gradient at initialisation is step 1's batch record in the run's metrics.jsonl
        metrics = pd.read_json(f"{record['run_dir']}/metrics.jsonl", lines=True)
        first = metrics[(metrics["type"] == "probe") & (metrics["step"] == 1)]
        first = first[first["inputs"] == "batch"].set_index("site")
        for layer in record["layers"]:
            expected = first.loc[f"act{layer['layer']}", "gradient_rms"]
            assert layer["gradient_init"] == pytest.approx(expected, rel=1e-12)
            assert expected > 0
        assert 0 <= record["test"] <= 1


def test_lcw_rows_cancel_the_shared_mean_so_their_shift_at_initialisation_is_near_zero(smoke):
    run = smoke(NAME)
    for record in run.records:
        shifts = [layer["shift_init"] for layer in record["layers"][1:]]  # layers 2..L
        assert all(0 <= s <= 1 for s in shifts)
        if record["family"] == "lcw":
            assert max(shifts) < 0.1
        else:  # sigmoid outputs share a mean near 1/2: plain rows shift every unit
            assert min(shifts) > 0.5


def test_the_table_s_gradient_ratio_is_first_over_last_layer(smoke):
    run = smoke(NAME)
    for row in run.results["table"]:
        family = "lcw" if row["model"].startswith("LCW") else "fc"
        runs = [r for r in run.records if r["family"] == family and r["depth"] == row["depth"]]
        ratio = np.mean(
            [r["layers"][0]["gradient_init"] / r["layers"][-1]["gradient_init"] for r in runs]
        )
        assert row["grad first/last (init → trained)"].startswith(f"{ratio:.3g} → ")
    assert_report(run, ["accuracy", "activation_shift", "gradient_rms"])
