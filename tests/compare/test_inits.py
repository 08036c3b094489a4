"""Initialisation as a factor of a comparison: ``--inits default,lsuv``.

The settings check their inits and leave them out of compare.json at the default; the plan
crosses them with families, depths and seeds; a tiny real comparison shows the remedy at work
(a deep narrow FC collapsed at initialisation, not collapsed after LSUV) in results.jsonl, the
printed table and the report.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from variability.arch import build_model
from variability.experiments.comparison import (
    CompareError,
    CompareSettings,
    check_settings,
    plan_cells,
    read_settings,
)
from variability.experiments.comparison.cells import initialize
from variability.reports.comparison_report import story, summary_table

from .conftest import assert_one_line_error, invoke, read_results

SMALL = {"params": 640, "depths": (2, 32), "families": ("fc", "han"), "seeds": 2}


@pytest.mark.parametrize(
    ("inits", "fragments"),
    [
        (("default", "xavier"), ("unknown init xavier", "known: default, lsuv, autoinit, center")),
        (("foo", "bar"), ("unknown inits foo, bar",)),
        (("lsuv", "lsuv"), ("inits repeat: lsuv,lsuv",)),
        ((), ("no inits to compare",)),
    ],
)
def test_bad_inits_are_refused_by_name(inits, fragments):
    with pytest.raises(CompareError) as caught:
        CompareSettings(inits=inits)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_the_default_init_is_left_out_of_compare_json_and_old_folders_resume(tmp_path):
    default = CompareSettings(**SMALL)
    assert "inits" not in default.to_json()
    assert not default.varies_init
    both = CompareSettings(**SMALL, inits=("default", "lsuv"))
    assert both.to_json()["inits"] == ["default", "lsuv"]
    assert both.varies_init
    assert CompareSettings.from_json(both.to_json()) == both
    # A folder started before inits existed: its compare.json has no "inits"; it resumes.
    check_settings(tmp_path, default, fresh=False)
    stored = json.loads((tmp_path / "compare.json").read_text())
    assert "inits" not in stored["settings"]
    assert read_settings(tmp_path) == default
    check_settings(tmp_path, CompareSettings(**SMALL), fresh=False)


@pytest.mark.parametrize(
    ("first", "second"), [(("default",), ("default", "lsuv")), (("default", "lsuv"), ("default",))]
)
def test_a_rerun_with_other_inits_is_refused(tmp_path, first, second):
    check_settings(tmp_path, CompareSettings(**SMALL, inits=first), fresh=False)
    with pytest.raises(CompareError) as caught:
        check_settings(tmp_path, CompareSettings(**SMALL, inits=second), fresh=False)
    message = str(caught.value)
    assert f"inits {','.join(first)} -> {','.join(second)}" in message, message


def test_the_plan_crosses_inits_and_keeps_default_names():
    plain = plan_cells(CompareSettings(**SMALL), 2, 1)
    both = plan_cells(CompareSettings(**SMALL, inits=("default", "lsuv")), 2, 1)
    assert len(plain) == 2 * 2 * 2 and len(both) == 2 * 2 * 2 * 2
    assert [c.name for c in both if c.init == "default"] == [c.name for c in plain]
    lsuv = [c for c in both if c.init == "lsuv"]
    assert {c.name for c in lsuv} == {f"{c.name}-lsuv" for c in plain}
    assert "fc-d32-s1-lsuv" in {c.name for c in lsuv}
    # the same model sizes for both inits
    sizes = {(c.family, c.depth, c.init): (c.width, c.params) for c in both}
    for family, depth, _ in sizes:
        assert sizes[(family, depth, "default")] == sizes[(family, depth, "lsuv")]


def test_a_remedy_that_fails_keeps_the_model_as_built():
    """An FC whose first layer is all zeros is dead on every input: LSUV cannot reach its target.
    ``initialize`` says why and leaves every weight as built (the cell then trains it)."""
    task = CompareSettings(**SMALL).load_task()
    model = build_model("fc", task.d_in, task.d_out, 4, width=6, seed=0)
    with torch.no_grad():
        model.linear1.weight.zero_()
        model.linear1.bias.fill_(-1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reason = initialize(model, "lsuv", task)
    assert reason, "the remedy should have failed"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert initialize(model, "default", task) is None


def test_a_failed_init_is_said_in_the_story_and_the_table_names_the_init():
    frame = pd.DataFrame(
        [
            {"cell": f"fc-d8-s{s}{'' if i == 'default' else '-' + i}", "family": "fc",
             "depth": 8, "seed": s, "init": i, "width": 4, "params": 100, "test": t,
             "output_variability": v, "network_collapsed": v == 0.0, "trained_collapsed": False,
             "init_failed": "layer 0 is dead on every input" if (i, s) == ("lsuv", 1) else None}
            for i, v, t in (("default", 0.0, 0.6), ("lsuv", 0.7, 0.9))
            for s in (0, 1)
        ]
    )  # fmt: skip
    lines = story(frame, "accuracy", baseline=0.6)
    assert "FC · default collapsed to a constant at initialisation in 2 of 2 seeds at depth 8." in (
        lines
    )
    assert "FC · lsuv did not collapse at initialisation at any depth (8)." in lines
    assert any(
        line.startswith("The lsuv remedy failed on 1 model (fc-d8-s1-lsuv), which trained as built")
        for line in lines
    ), lines
    assert any("Best mean test accuracy: FC · lsuv at depth 8" in line for line in lines), lines
    table = summary_table(frame, "accuracy", 0.6)
    assert list(table.columns[:3]) == ["family", "depth", "init"]
    assert list(table["init"][:2]) == ["default", "lsuv"]
    assert list(table["C2C at init"][:2]) == ["2 of 2", "0 of 2"]


def test_bad_inits_on_the_command_line_are_one_line(tmp_path):
    run = invoke("compare", "--inits", "default,xavier", "--out", tmp_path / "x")
    assert_one_line_error(run, "unknown init xavier", "lsuv")
    assert not (tmp_path / "x").exists()


DEEP_NARROW = [
    "--params", "640",
    "--depths", "32",
    "--families", "fc",
    "--seeds", "2",
    "--steps", "4",
    "--every", "2",
    "--batch-size", "64",
    "--workers", "1",
]  # fmt: skip
"""FC-ReLU 32 x 4 (637 parameters): collapsed at initialisation with its own Kaiming weights."""


@pytest.fixture(scope="module")
def remedied(tmp_path_factory):
    out = tmp_path_factory.mktemp("inits") / "cmp"
    run = invoke("compare", *DEEP_NARROW, "--inits", "default,lsuv", "--out", out)
    assert run.exit_code == 0, (run.stdout, run.stderr, run.exception)
    return out, run


def test_lsuv_cells_start_alive_where_default_ones_collapse(remedied):
    out, run = remedied
    records = {r["cell"]: r for r in read_results(out)}
    assert set(records) == {"fc-d32-s0", "fc-d32-s1", "fc-d32-s0-lsuv", "fc-d32-s1-lsuv"}
    default = [r for r in records.values() if r["init"] == "default"]
    lsuv = [r for r in records.values() if r["init"] == "lsuv"]
    assert any(r["network_collapsed"] for r in default)
    assert not any(r["network_collapsed"] for r in lsuv)
    assert all(r["init_failed"] is None for r in lsuv)
    assert all("init_failed" not in r for r in default)
    for seed in (0, 1):
        assert records[f"fc-d32-s{seed}"]["params"] == records[f"fc-d32-s{seed}-lsuv"]["params"]
    assert "inits default,lsuv" in run.stderr


def test_the_table_and_the_report_name_the_init(remedied):
    out, run = remedied
    header = next(line for line in run.stdout.splitlines() if line.lstrip().startswith("family"))
    assert header.split()[:3] == ["family", "depth", "init"], header
    rows = [line.split() for line in run.stdout.splitlines()]
    rows = [row for row in rows if row[:2] == ["FC", "32"]]
    assert [row[2] for row in rows] == ["default", "lsuv"], run.stdout
    assert "FC · lsuv did not collapse at initialisation" in run.stdout
    html = (out / "report" / "index.html").read_text()
    assert "FC · lsuv" in html and "heatmap_variability_fc_lsuv.png" in html
