"""The report of a training run: `variability report RUN_DIR`, its figures, a real browser."""

from __future__ import annotations

import html as html_module
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from variability import Thresholds, build_model, load_task
from variability.cli.app import app
from variability.reports.figures.training import (
    activation_heatmap,
    gradient_rms,
    site_order,
    training_curves,
    variability_heatmap,
)
from variability.reports.run_report import build_run_page, flatten
from variability.runs.run_dir import read_metrics
from variability.runs.trainer import TrainConfig, train

ENV = {"CI": "true", "NO_COLOR": "1", "COLUMNS": "120"}
FIGURES = ["curves", "output_variability", "variability_heatmap", "activation_heatmap",
           "gradient_rms"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run of a deep, narrow ReLU network (it collapses: events to show)."""
    folder = tmp_path_factory.mktemp("runs") / "deep"
    model = build_model("fc", 2, 1, 12, width=3, seed=1)
    config = TrainConfig(steps=40, every=10, batch_size=64)
    train(model, load_task("checkerboard", 0), config, folder)
    return folder


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def test_report_command_writes_every_figure_and_the_events(run, tmp_path):
    result = invoke("report", run, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    index = tmp_path / "report" / "index.html"
    assert result.stdout.strip() == str(index)
    html = index.read_text()
    for name in FIGURES:
        assert (tmp_path / "report" / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
        assert f'src="{name}.png"' in html
    events = read_metrics(run, "event")
    assert not events.empty
    for message in events["message"]:
        assert html_module.escape(message) in html
    stored = json.loads((run / "result.json").read_text())
    assert f"<td>test</td><td>{stored['test']:.4g}</td>" in html
    assert "fc depth 12 width 3" in html and "model.spec.seed" in html


def test_default_folder_is_inside_the_run(run):
    result = invoke("report", run, "--quiet", "--self-contained")
    assert result.exit_code == 0 and result.stdout == ""
    assert sorted(p.name for p in (run / "report").iterdir()) == ["index.html"]


def test_not_a_run_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    for target, fragment in ((tmp_path / "empty", "not a run directory"),
                             (tmp_path / "missing", "no such folder")):  # fmt: skip
        result = invoke("report", target)
        assert result.exit_code == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_unfinished_run_is_drawn_with_a_note(run):
    info = json.loads((run / "run.json").read_text())
    records = read_metrics(run)
    page = build_run_page(info, records[records["step"] <= 20], None)
    html = page.render(self_contained=False)
    assert "This run has not finished (records up to step 20)" in html


def test_a_monitor_run_is_described_as_such(run):
    info = json.loads((run / "run.json").read_text()) | {"kind": "monitor"}
    html = build_run_page(info, read_metrics(run), None).render(self_contained=False)
    assert "Recorded by a Monitor in a training loop: 5 recorded steps" in html
    assert "has not finished" not in html


def test_the_report_reads_the_levels_the_run_used(run):
    info = json.loads((run / "run.json").read_text())
    result = json.loads((run / "result.json").read_text())
    assert info["monitor"]["thresholds"] == Thresholds().to_dict()
    info["monitor"]["thresholds"] = Thresholds(collapsed=0.02, collapsing=0.3).to_dict()
    html = build_run_page(info, read_metrics(run), result).render(self_contained=False)
    assert "(collapsed at V &lt;= 0.02)." in html
    assert "Dark: V near 0.002 or below, collapsed." in html
    del info["monitor"]["thresholds"]  # a run that does not say: the defaults
    html = build_run_page(info, read_metrics(run), result).render(self_contained=False)
    assert f"(collapsed at V &lt;= {Thresholds().collapsed:g})." in html


def test_figures_skip_when_their_data_is_missing():
    empty = pd.DataFrame()
    assert training_curves(empty, empty) is None
    assert variability_heatmap(empty) is None
    assert activation_heatmap(pd.DataFrame({"step": [1], "site": ["a"], "depth": [0]})) is None
    no_gradients = pd.DataFrame(
        {"step": [1, 2], "site": ["a", "a"], "depth": [0, 0], "gradient_rms": [None, None]}
    )
    assert gradient_rms(no_gradients) is None
    page = build_run_page({"model": {"class": "Net"}}, pd.DataFrame({"type": ["start"]}), None)
    html = page.render(self_contained=False)
    assert html.count("was not drawn: the data it needs is missing") == len(FIGURES)


def test_sites_are_drawn_in_depth_order_with_the_output_last():
    probes = pd.DataFrame(
        {
            "site": ["output", "act10", "act2", "act1"],
            "depth": [3, 2, 1, 0],
            "step": [1, 1, 1, 1],
            "variability": [0.5, 0.4, 0.3, 0.2],
        }
    )
    assert site_order(probes) == ["act1", "act2", "act10", "output"]
    figure = variability_heatmap(probes)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["act1", "act2", "act10", "output"]


def test_configuration_is_flattened_for_the_table():
    flat = flatten({"model": {"spec": {"depth": 3}, "sites": ["a", "b"]}, "kind": "train"})
    assert flat == {"model.spec.depth": "3", "model.sites": "a, b", "kind": "train"}


def test_run_report_in_a_real_browser(run, tmp_path, browser):
    folder = tmp_path / "report"
    assert invoke("report", run, "--out", folder, "--quiet").exit_code == 0
    browser.check_report(folder / "index.html", min_images=len(FIGURES))


def test_a_run_without_validation_gets_no_empty_panel_and_no_word_of_one(run):
    """A Monitor in a user's loop evaluates nothing: the curves are the loss alone."""
    info = json.loads((run / "run.json").read_text()) | {"kind": "monitor"}
    records = read_metrics(run)
    records = records[records["type"] != "eval"]
    figure = training_curves(records[records["type"] == "step"], pd.DataFrame())
    assert len(figure.axes) == 1 and figure.axes[0].get_title() == "Loss"
    html = build_run_page(info, records, None).render(self_contained=False)
    caption = html.split('src="curves.png"', 1)[1].split("</figcaption>", 1)[0]
    assert "validation" not in caption.lower()


def test_scores_are_shown_beside_the_baseline(run):
    """The chosen checkpoint's table and the validation panel show the majority class."""
    info = json.loads((run / "run.json").read_text())
    baseline = info["task"]["baseline"]
    assert baseline["test"] == pytest.approx(load_task("checkerboard", 0).baseline("test"))
    result = json.loads((run / "result.json").read_text())
    html = build_run_page(info, read_metrics(run), result).render(self_contained=False)
    assert "<th>accuracy of the majority class</th>" in html
    assert f"<td>{baseline['test']:.4g}</td>" in html
    records = read_metrics(run)
    evals = records[(records["type"] == "eval") & (records["split"] == "val")]
    figure = training_curves(records[records["type"] == "step"], evals, "accuracy", 20, 0.61,
                             "majority class")  # fmt: skip
    right = figure.axes[1]
    assert [line.get_label() for line in right.get_lines()][:2] == [
        "validation", "majority class (0.610)"
    ]  # fmt: skip


def test_versions_are_listed_once(run, tmp_path):
    folder = tmp_path / "report"
    assert invoke("report", run, "--out", folder, "--quiet").exit_code == 0
    html = (folder / "index.html").read_text()
    made = html.split("How this report was made", 1)[1]
    assert made.count("<td>torch</td>") == 1 and "run.torch" not in made
