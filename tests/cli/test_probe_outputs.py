"""What the command prints and writes, and its exit codes: table, verdict, diagnosis, --quiet,
--json (file and stdout), --csv, --report, --fail-on (exit 3), thresholds."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from variability import Thresholds, load_model, probe_model

from .conftest import save_model, save_torchscript, small_fc


def test_table_verdict_and_diagnosis(cli, collapsed_file):
    run = cli("probe", collapsed_file, "--samples", "200")
    assert run.exit_code == 0 and run.stderr == ""
    lines = run.stdout.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["site", "layer"])
    assert header.split() == [
        "site",
        "layer",
        "shape",
        "units",
        "AR",
        "dead",
        "V",
        "constant",
        "shift",
        "status",
    ]
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1]}
    assert rows["act1"][-1] == "healthy" and rows["act3"][-1] == "collapsed"
    assert rows["output"][-1] == "collapsed"
    assert rows["act3"][1:3] == ["ReLU", "(N,6)"]  # the layer's type and tensor shape
    assert rows["act3"][7] == "100.0%"  # every unit of act3 constant
    verdict = next(line for line in lines if line.startswith("verdict:"))
    assert "network C2C: yes" in verdict and "first collapsed site: act3" in verdict
    assert "collapsed to a constant" in run.stdout and "fewer layers" in run.stdout


def test_healthy_model_says_nothing_stands_out(cli, toolkit_file):
    run = cli("probe", toolkit_file, "--samples", "200")
    assert "network C2C: no, first collapsed site: none" in run.stdout
    assert "nothing stands out" in run.stdout


def test_quiet_prints_only_the_verdict(cli, collapsed_file):
    run = cli("probe", collapsed_file, "--samples", "200", "--quiet")
    assert run.exit_code == 0
    assert run.stdout.strip().splitlines() == [
        "verdict: output V 0 (collapsed), network C2C: yes, first collapsed site: act3"
    ]


def test_json_to_a_file_and_to_stdout_agree(cli, toolkit_file, tmp_path):
    to_file = cli("probe", toolkit_file, "--samples", "200", "--json", tmp_path / "out" / "p.json")
    assert to_file.exit_code == 0 and "site" in to_file.stdout  # the table still prints
    written = json.loads((tmp_path / "out" / "p.json").read_text())
    to_stdout = cli("probe", toolkit_file, "--samples", "200", "--json", "-")
    assert to_stdout.json()["sites"] == written["sites"]  # stdout holds the JSON and nothing else
    assert written["schema_version"] == 1
    assert {"model", "inputs", "device", "diagnosis", "notes"} <= set(written)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_json_diagnosis_names_the_figure_behind_each_hint(cli, collapsed_file):
    document = cli("probe", collapsed_file, "--samples", "200", "--json", "-").json()
    (hint,) = [h for h in document["diagnosis"] if h["rule"] == "collapsed"]
    assert hint["site"] == "act3" and hint["figure"] == "variability"
    assert hint["value"] == document["sites"][2]["variability"] and hint["threshold"] == 1e-3


def test_csv_has_one_row_per_site_and_the_output(cli, toolkit_file, tmp_path):
    run = cli("probe", toolkit_file, "--samples", "200", "--csv", tmp_path / "p.csv")
    assert run.exit_code == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame["name"]) == ["act1", "act2", "act3", "output"]
    x = torch.cat(
        list(__import__("variability.loading").loading.generate_inputs((2,), 200).batches(200))
    )
    direct = probe_model(load_model(toolkit_file), x).to_pandas()
    assert frame["variability"].to_numpy() == pytest.approx(
        direct["variability"].to_numpy(), rel=1e-5
    )
    stdout_csv = cli("probe", toolkit_file, "--samples", "200", "--csv", "-")
    assert stdout_csv.stdout.splitlines()[0].startswith("name,kind,source,depth")


def test_report_folder_and_self_contained(cli, collapsed_file, tmp_path):
    run = cli("probe", collapsed_file, "--samples", "200", "--report", tmp_path / "rep")
    assert run.exit_code == 0, run.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert (tmp_path / "rep" / "site_profile.png").stat().st_size > 1000
    assert "<td>act3</td>" in html and "collapsed to a constant" in html  # the diagnosis
    assert "variability model file" in html and "probe" in html  # provenance
    cli(
        "probe",
        collapsed_file,
        "--samples",
        "200",
        "--report",
        tmp_path / "one",
        "--self-contained",
    )
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["index.html"]
    assert "data:image/png;base64," in (tmp_path / "one" / "index.html").read_text()


@pytest.mark.parametrize("condition", ["collapsed", "collapsing"])
def test_fail_on_collapse_exits_3_after_writing(cli, collapsed_file, tmp_path, condition):
    json_file = ("--json", tmp_path / "p.json")
    run = cli("probe", collapsed_file, "--samples", "200", "--fail-on", condition, *json_file)
    assert run.exit_code == 3, run.stderr
    assert f"fail-on {condition}: act3 is collapsed (V = 0)" in run.stderr
    assert json.loads((tmp_path / "p.json").read_text())["verdict"]["network_collapsed"]


@pytest.fixture
def half_dead_file(tmp_path):
    """act2 with 4 of its 6 units never active: zero weights, negative bias."""
    model = small_fc()
    with torch.no_grad():
        model.linear2.weight[:4].zero_()
        model.linear2.bias[:4] = -1.0
    return save_model(model, tmp_path / "half_dead.pt")


@pytest.mark.parametrize(("fraction", "code"), [("0", 3), ("0.5", 3), ("0.6", 3), ("0.7", 0)])
def test_fail_on_dead_fraction(cli, half_dead_file, fraction, code):
    run = cli("probe", half_dead_file, "--samples", "200", "--fail-on", f"dead:{fraction}")
    assert run.exit_code == code, run.stderr
    if code == 3:
        assert f"fail-on dead:{fraction}: act2 has 66.7% dead units" in run.stderr
    assert "At act2, 67% of the units are dead" in run.stdout  # the diagnosis names it


def test_fail_on_healthy_model_exits_0(cli, toolkit_file):
    conditions = ("--fail-on", "collapsed", "--fail-on", "collapsing")
    run = cli("probe", toolkit_file, "--samples", "200", *conditions)
    assert run.exit_code == 0 and "fail-on" not in run.stderr


@pytest.fixture
def all_nan_file(tmp_path):
    """A model whose first layer holds NaN: no finite value reaches any site or the output."""
    model = small_fc()
    with torch.no_grad():
        model.linear1.weight.fill_(float("nan"))
    return save_model(model, tmp_path / "all_nan.pt")


@pytest.mark.parametrize("condition", ["collapsed", "collapsing"])
def test_an_all_nan_model_fails_the_collapse_conditions(cli, all_nan_file, tmp_path, condition):
    """No finite output: the network cannot be shown to vary, so it cannot pass."""
    json_file = ("--json", tmp_path / "p.json")
    run = cli("probe", all_nan_file, "--samples", "200", "--fail-on", condition, *json_file)
    assert run.exit_code == 3, run.stderr
    assert f"fail-on {condition}: act1 saw no finite value (2,400 NaN/Inf), so no V" in run.stderr
    assert json.loads((tmp_path / "p.json").read_text())["output"]["status"] == "no data"


def test_fail_on_nonfinite(cli, all_nan_file, toolkit_file, tmp_path):
    run = cli("probe", all_nan_file, "--samples", "200", "--fail-on", "nonfinite")
    assert run.exit_code == 3 and "fail-on nonfinite: act1 saw 2,400 NaN/Inf values" in run.stderr
    assert cli("probe", toolkit_file, "--samples", "200", "--fail-on", "nonfinite").exit_code == 0
    x = torch.rand(100, 2)
    x[7, 1] = float("inf")  # one bad input: the probe runs on, and nonfinite holds
    torch.save(x, tmp_path / "inf.pt")
    run = cli("probe", toolkit_file, "--inputs", tmp_path / "inf.pt", "--fail-on", "nonfinite")
    assert run.exit_code == 3 and "fail-on nonfinite: act1 saw" in run.stderr
    assert cli("probe", toolkit_file, "--inputs", tmp_path / "inf.pt").exit_code == 0


def test_fail_on_collapsing_without_collapse(cli, probe_json, tmp_path):
    model = small_fc(depth=2)
    with torch.no_grad():  # act2 varies only a little around its bias
        model.linear2.weight.mul_(0.01)
        model.linear2.bias.fill_(1.0)
    path = save_model(model, tmp_path / "fading.pt")
    assert probe_json(path, "--samples", "200")["sites"][1]["status"] == "collapsing"
    assert cli("probe", path, "--samples", "200", "--fail-on", "collapsed").exit_code == 0
    run = cli("probe", path, "--samples", "200", "--fail-on", "collapsing")
    assert run.exit_code == 3 and "act2 is collapsing" in run.stderr


def test_thresholds_reach_the_verdict(probe_json, toolkit_file):
    base = probe_json(toolkit_file, "--samples", "200")
    v = base["output"]["variability"]
    levels = ("--collapse-level", str(v * 1.01), "--collapsing-level", "0.99", "--tau", "0.3")
    higher = probe_json(toolkit_file, "--samples", "200", *levels)
    assert higher["thresholds"] == {
        "tau": 0.3,
        "collapsed": v * 1.01,
        "collapsing": 0.99,
        "constant": 1e-3,
        "dead": 0.5,
    }
    assert base["verdict"]["network_collapsed"] is False
    assert higher["verdict"]["network_collapsed"] is True


def test_constant_level_reaches_the_figures(cli, probe_json, toolkit_file):
    base = probe_json(toolkit_file, "--samples", "200")
    assert base["thresholds"] == Thresholds().to_dict()  # the CLI's defaults are Thresholds'
    assert any(s["constant_fraction"] < 1 for s in base["sites"])
    # a unit's std is at most sqrt(units) times its site's RMS (here 2): at 10, every unit
    loose = probe_json(toolkit_file, "--samples", "200", "--constant-level", "10")
    assert loose["thresholds"]["constant"] == 10.0
    assert all(s["constant_fraction"] == 1.0 for s in [*loose["sites"], loose["output"]])
    run = cli("probe", toolkit_file, "--samples", "200", "--constant-level", "10")
    assert "constant where std <= 10 RMS" in run.stdout
    bad = cli("probe", toolkit_file, "--samples", "20", "--constant-level", "-1")
    assert bad.exit_code == 2 and "tolerance must be >= 0" in bad.stderr
    assert "--constant-level" in cli("probe", "--help").stdout


def test_nan_inputs_are_counted_and_reported(cli, toolkit_file, tmp_path):
    x = torch.rand(100, 2) * 2 - 1
    bad_rows = [3, 50, 77]
    x[bad_rows, 0] = float("nan")
    torch.save(x, tmp_path / "nan.pt")
    run = cli("probe", toolkit_file, "--inputs", tmp_path / "nan.pt")
    assert run.exit_code == 0, run.stderr
    assert "NaN/Inf" in run.stdout and "the inputs hold 3 NaN/Inf values" in run.stdout
    assert "NaN/Inf values reached the probe sites" in run.stdout  # the diagnosis
    document = cli("probe", toolkit_file, "--inputs", tmp_path / "nan.pt", "--json", "-").json()
    assert document["inputs"]["nonfinite"] == 3
    output = document["output"]
    assert output["nonfinite"] == len(bad_rows)  # one output value per NaN row
    assert output["samples"] == 100 - len(bad_rows)  # the rest are measured
    clean = probe_model(load_model(toolkit_file), x[[i for i in range(100) if i not in bad_rows]])
    assert output["variability"] == pytest.approx(clean.output.variability, rel=1e-5)


def test_help_documents_the_exit_codes(cli):
    run = cli("probe", "--help")
    assert run.exit_code == 0
    text = " ".join(run.stdout.split())
    assert "0 fine; 2 bad input or usage" in text and "3 a --fail-on condition held" in text
    for option in (
        "--arch",
        "--trust-pickle",
        "--inputs",
        "--input-shape",
        "--json",
        "--csv",
        "--report",
        "--fail-on",
        "--quiet",
        "--device",
        "--sites",
        "--tau",
    ):
        assert option in text


def test_inputs_that_are_all_nan(cli, toolkit_file, tmp_path):
    torch.save(torch.full((10, 2), float("nan")), tmp_path / "nan.pt")
    run = cli("probe", toolkit_file, "--inputs", tmp_path / "nan.pt")
    assert run.exit_code == 0, run.stderr
    assert "network C2C: unknown (no finite output value)" in run.stdout
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines() if line.strip()}
    assert rows["act1"][4:6] == ["-", "-"] and rows["act1"][-3:] == ["120", "no", "data"]
    document = cli("probe", toolkit_file, "--inputs", tmp_path / "nan.pt", "--json", "-").json()
    assert document["verdict"]["output_variability"] is None
    assert document["sites"][0]["nonfinite"] == 10 * 6 * 2  # every z and a of act1's 6 units


@pytest.mark.filterwarnings("error::UserWarning")
def test_report_of_an_output_only_probe(cli, tmp_path):
    save_torchscript(small_fc(), tmp_path / "scripted.pt")
    run = cli("probe", tmp_path / "scripted.pt", "--samples", "100", "--report", tmp_path / "r")
    assert run.exit_code == 0 and run.stderr == ""  # and no warning from the figures
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<td>output</td>" in html and (tmp_path / "r" / "site_profile.png").exists()


def test_progress_bar_on_a_terminal_over_batches_and_silenced_by_quiet(cli, toolkit_file):
    terminal = {"TTY_COMPATIBLE": "1"}  # rich then treats stderr as a terminal
    many = ("--samples", "3000", "--batch-size", "1000")
    shown = cli("probe", toolkit_file, *many, "--json", "-", env=terminal)
    assert "probing" in shown.stderr and "3000/3000" in shown.stderr
    assert shown.json()["samples"] == 3000  # stdout untouched by the bar
    assert cli("probe", toolkit_file, *many, "--quiet", env=terminal).stderr == ""
    one_batch = cli("probe", toolkit_file, "--samples", "1000", "--json", "-", env=terminal)
    assert "probing" not in one_batch.stderr
    assert "probing" not in cli("probe", toolkit_file, *many, "--json", "-").stderr  # no terminal
