"""The comparison report's content: the table, the sentences, every figure, provenance; and the
self-contained variant (test_cli.py). Opening it in a real browser:
tests/reports/test_comparison_report.py."""

from __future__ import annotations

import re

import pandas as pd

from variability.reports.comparison_report import chosen_cells, story, summary_table

from .conftest import read_results

FIGURES = [
    "variability_and_c2c",
    "site_profiles",
    "v3",
    "pieces_per_line",
    "test_metric",
    "validation_curves",
    "learned_functions",
    "heatmap_variability_fc",
    "heatmap_activation_fc",
    "heatmap_variability_han",
    "heatmap_activation_han",
]


def test_the_report_holds_every_figure_and_every_models_count(tiny_comparison):
    out, _ = tiny_comparison
    folder = out / "report"
    html = (folder / "index.html").read_text()
    for name in FIGURES:
        assert (folder / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
        assert f'src="{name}.png"' in html, name
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted(FIGURES)
    for count in ("645", "637", "661"):  # FC and Han at depths 2 and 32 (Han at 2: 637 too)
        assert f"<td>{count}</td>" in html
    assert "FC collapsed to a constant at initialisation in 3 of 3 seeds at depth 32." in html
    assert "<td>3 of 3</td>" in html
    assert "fc-d32-s0" in html and "han-d32-s0" in html  # the models the site figures show
    assert "<td>command</td><td>" in html  # the process's argv: pytest's, in this test
    assert re.search(r"<td>torch</td><td>\d+\.\d+", html)
    assert "<td>device</td><td>cpu</td>" in html
    assert "<td>model seeds</td><td>0, 1, 2</td>" in html
    assert "<td>finished models</td><td>12 of 12</td>" in html
    for term in ("C2C rate", "Variability (V)", "Chosen on validation", "Parameter budget"):
        assert f"<dt>{term}</dt>" in html


def test_the_summary_table_and_sentences_follow_the_records(tiny_comparison):
    records = read_results(tiny_comparison[0])
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "sites"} for r in records])
    table = summary_table(frame, "accuracy")
    assert list(table["family"]) == ["FC", "FC", "Han", "Han"]
    assert list(table["depth"]) == [2, 32, 2, 32]
    fc_deep = [r for r in records if r["family"] == "fc" and r["depth"] == 32]
    row = table.iloc[1]
    assert row["C2C at init"] == f"{sum(r['network_collapsed'] for r in fc_deep)} of 3"
    tests = [r["test"] for r in fc_deep]
    mean = sum(tests) / 3
    sd = (sum((t - mean) ** 2 for t in tests) / 2) ** 0.5
    assert row["test accuracy"] == f"{mean:.3f} ± {sd:.3f}"
    assert abs(row["output V at init"] - sum(r["output_variability"] for r in fc_deep) / 3) < 1e-12
    lines = story(frame, "accuracy")
    assert lines[1] == "Han did not collapse at initialisation at any depth (2, 32)."
    best = max(
        ((f, d) for f in ("fc", "han") for d in (2, 32)),
        key=lambda fd: sum(r["test"] for r in records if (r["family"], r["depth"]) == fd),
    )
    assert f"at depth {best[1]}" in lines[2]
    assert {f: c["cell"] for f, c in chosen_cells(records).items()} == {
        "fc": "fc-d32-s0",
        "han": "han-d32-s0",
    }
