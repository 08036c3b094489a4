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
]
"""Han's activation ratio is 1 at every site and step (abs has no flat part): a sentence says so
in place of a heatmap of one colour."""


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
    assert "The activation ratio is 1 at every site and every recorded step" in html
    assert "Abs and Han units are active wherever their pre-activation is not 0" in html
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
    assert list(table["depth"]) == ["2", "32", "2", "32"]
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
    assert {key: c["cell"] for key, c in chosen_cells(records).items()} == {
        ("fc", "default"): "fc-d32-s0",
        ("han", "default"): "han-d32-s0",
    }


def test_a_model_at_the_baseline_is_never_called_the_best():
    def frame(tests: dict[tuple[str, int], float]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"family": f, "depth": d, "seed": 0, "test": t, "network_collapsed": False}
                for (f, d), t in tests.items()
            ]
        )

    at_baseline = frame({("fc", 2): 0.605, ("lcw", 2): 0.602, ("han", 2): 0.598})
    lines = story(at_baseline, "accuracy", baseline=0.602)
    assert not any(line.startswith("Best") for line in lines)
    assert "No model's mean test accuracy is above the majority class baseline (0.602)" in lines[-1]
    learned = frame({("fc", 6): 0.69, ("lcw", 6): 0.597, ("lcw", 2): 0.60, ("han", 6): 0.86})
    lines = story(learned, "accuracy", baseline=0.602)
    assert "Best mean test accuracy: Han at depth 6, 0.860 against the majority class " in (
        " ".join(lines)
    )
    assert "LCW stayed at the baseline at depths 6, 2: its mean test accuracy is within" in (
        " ".join(lines)
    )
    table = summary_table(learned.assign(width=4, params=100, output_variability=0.5,
                                         trained_collapsed=False), "accuracy", 0.602)  # fmt: skip
    assert table.iloc[-1]["family"] == "baseline: majority class"
    assert table.iloc[-1]["test accuracy"] == "0.602"


def test_every_figure_has_one_width_and_is_shown_at_one_scale(tiny_comparison):
    """One font size reads the same in every figure: all are FIGURE_WIDTH inches wide (give or
    take what the tight crop trims), and the page shows each at the same pixels per inch."""
    from variability.reports.page import CSS_PIXELS_PER_INCH, DPI
    from variability.reports.style import FIGURE_WIDTH

    folder = tiny_comparison[0] / "report"
    html = (folder / "index.html").read_text()
    for png in folder.glob("*.png"):
        pixels = int.from_bytes(png.read_bytes()[16:20], "big")
        assert abs(pixels / DPI - FIGURE_WIDTH) <= 0.1 * FIGURE_WIDTH, png.name
        shown = round(pixels * CSS_PIXELS_PER_INCH / DPI)
        assert f'src="{png.name}" width="{shown}"' in html, png.name


def test_the_learned_functions_have_a_colour_bar():
    import numpy as np

    from variability.reports.figures.comparison import learned_function_grid

    target = np.zeros((5, 5))
    figure = learned_function_grid(target, {("fc", 2): target, ("han", 2): target}, (-1, 1))
    bars = [a for a in figure.axes if a.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "model output" in bars[0].get_ylabel()
    assert bars[0].get_ylim() == (0.0, 1.0)  # the target's scale
