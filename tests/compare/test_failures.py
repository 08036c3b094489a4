"""A model that fails does not stop the others (unless --fail-fast): it is named on stderr, the
command exits 1 once the others have ended, and a rerun trains only the failed one."""

from __future__ import annotations

import variability.experiments.comparison.cells as cell_module

from .conftest import invoke, read_results

SMALL = [
    "compare", "--depths", "2", "--families", "fc,han", "--seeds", "2", "--steps", "4",
    "--tolerance", "0.25", "--every", "2", "--batch-size", "64", "--workers", "1",
]  # fmt: skip


def test_a_failed_model_is_named_the_others_finish_and_a_rerun_trains_only_it(
    tmp_path, monkeypatch
):
    out = tmp_path / "cmp"
    real = cell_module.run_cell
    calls: list[str] = []

    def fc_s1_fails(cell, *args, **kwargs):
        calls.append(cell.name)
        if cell.name == "fc-d2-s1":
            raise RuntimeError("out of luck")
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(cell_module, "run_cell", fc_s1_fails)
    run = invoke(*SMALL, "--out", out)
    assert run.exit_code == 1, (run.stdout, run.stderr, run.exception)
    assert "Traceback" not in run.stderr + run.stdout
    assert calls == ["fc-d2-s0", "fc-d2-s1", "han-d2-s0", "han-d2-s1"]  # the others went on
    assert "fc-d2-s1 failed: RuntimeError: out of luck" in run.stderr  # as it happened
    assert "error: 1 of 4 models failed" in run.stderr
    assert "  fc-d2-s1: RuntimeError: out of luck" in run.stderr  # and at the end
    assert sorted(r["cell"] for r in read_results(out)) == ["fc-d2-s0", "han-d2-s0", "han-d2-s1"]

    calls.clear()
    monkeypatch.setattr(
        cell_module,
        "run_cell",
        lambda cell, *a, **k: calls.append(cell.name) or real(cell, *a, **k),
    )
    run = invoke(*SMALL, "--out", out)
    assert run.exit_code == 0, (run.stderr, run.exception)
    assert calls == ["fc-d2-s1"]
    assert sorted(r["cell"] for r in read_results(out)) == [
        "fc-d2-s0", "fc-d2-s1", "han-d2-s0", "han-d2-s1"
    ]  # fmt: skip
