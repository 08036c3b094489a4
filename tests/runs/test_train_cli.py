"""`variability train`: a tiny run end to end, resume of a finished run, and one-line errors."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from variability import load_model, load_task
from variability.cli.app import app
from variability.runs import run_dir as run_dir_module
from variability.runs.run_dir import read_records

ENV = {"CI": "true", "NO_COLOR": "1", "COLUMNS": "120"}
TINY = ["train", "--family", "fc", "--depth", "2", "--params", "205", "--steps", "40",
        "--every", "10", "--batch-size", "64", "--quiet"]  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def assert_user_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_train_writes_a_run_and_prints_the_metrics(tmp_path):
    out = tmp_path / "run"
    result = invoke(*TINY, "--out", out)
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "result.json").read_text())
    assert f"accuracy: train {stored['train']:.4f}  val {stored['val']:.4f}" in result.stdout
    assert f"test {stored['test']:.4f}" in result.stdout
    assert "(baseline, the majority class: test 0.6017)" in result.stdout
    assert "chosen on validation" in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["kind"] == "train" and run["model"]["spec"]["family"] == "fc"
    assert run["model"]["parameters"] == 205 and run["config"]["steps"] == 40
    assert run["command"]  # the command line, for the report
    probed = invoke("probe", out / "model.pt", "--quiet")  # no other argument needed
    assert probed.exit_code == 0 and "verdict:" in probed.stdout, probed.output
    model = load_model(out / "model.pt")
    task = load_task("checkerboard", 0)
    assert task.evaluate(model, "test") == pytest.approx(stored["test"], abs=1e-12)
    records = read_records(out / "metrics.jsonl")
    assert records[0]["type"] == "start" and records[-1]["type"] == "finish"
    assert {r["type"] for r in records} >= {"probe", "step", "eval"}


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    out = tmp_path / "run"
    assert invoke(*TINY, "--out", out).exit_code == 0
    before = (out / "metrics.jsonl").read_bytes()
    result = invoke(*TINY, "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert "holds a finished run; nothing was trained again" in result.stdout
    assert (out / "metrics.jsonl").read_bytes() == before
    assert_user_error(invoke(*TINY, "--out", out), "already holds a run", "--resume")


def test_budget_refusal_and_bad_options_are_one_line(tmp_path):
    # FC at depth 8: width 9 has 667 parameters (7.4% under 720), width 10 has 811 (12.6% over)
    refused = invoke("train", "--family", "fc", "--depth", "8", "--params", "720",
                     "--out", tmp_path / "a")  # fmt: skip
    assert_user_error(refused, "cannot meet a budget of 720", "Nearest feasible budget")
    assert not (tmp_path / "a").exists()
    assert_user_error(invoke(*TINY, "--optimizer", "rmsprop", "--out", tmp_path / "b"),
                      "unknown optimizer 'rmsprop'")  # fmt: skip
    assert_user_error(invoke(*TINY, "--task", "mnist", "--out", tmp_path / "c"),
                      "unknown task 'mnist'")  # fmt: skip
    assert_user_error(invoke(*TINY, "--device", "cuda:7", "--out", tmp_path / "d"), "cuda:7")


def test_unwritable_run_directory_is_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    assert_user_error(invoke(*TINY, "--out", tmp_path / "file" / "run"),
                      "cannot create the run directory", "Not a directory")  # fmt: skip
    assert_user_error(invoke(*TINY, "--out", "/sys/kernel/variability-run"),
                      "cannot create the run directory")  # fmt: skip


def test_full_disk_at_start_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir_module, "free_bytes", lambda path: 5 * 2**20)
    line = assert_user_error(invoke(*TINY, "--out", tmp_path / "run"), "free on the disk")
    assert "5.0 MB" in line
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_disk_full_mid_run_ends_in_a_clear_message_and_keeps_earlier_records(tmp_path, monkeypatch):
    """The metrics file's descriptor is pointed at /dev/full after a few writes: every later
    write meets a real ENOSPC from the kernel."""
    original = run_dir_module.MetricsFile.write
    calls = {"n": 0}

    def write(self, records):
        calls["n"] += 1
        if calls["n"] == 6:
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, self._fd)
            os.close(full)
        return original(self, records)

    monkeypatch.setattr(run_dir_module.MetricsFile, "write", write)
    out = tmp_path / "run"
    result = invoke(*TINY, "--out", out)
    line = assert_user_error(result, "metrics.jsonl", "No space left on device", "disk is full")
    assert "records written before are kept" in line
    records = read_records(out / "metrics.jsonl")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(records) == len(lines) > 0  # every line written before the failure parses
    assert not (out / "result.json").exists()


def test_the_papers_protocol_and_the_published_hannet_from_the_command_line(tmp_path):
    out = tmp_path / "hannet"
    result = invoke(
        "train", "--family", "han", "--depth", "20", "--width", "30", "--han-layout",
        "published", "--init", "torch-orthogonal", "--protocol", "paper", "--steps", "30",
        "--val-fraction", "0", "--every", "10", "--out", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3,032 parameters" in result.stdout and "no validation split" in result.stdout
    run = json.loads((out / "run.json").read_text())
    config, spec = run["config"], run["model"]["spec"]
    assert (config["optimizer"], config["momentum"], config["batch_size"]) == ("sgd", 0.9, 100)
    assert config["lr_milestones"] == [0.5, 0.7, 0.9] and config["sampling"] == "independent"
    assert config["steps"] == 30 and config["lr"] == 0.05  # explicit --steps wins
    assert spec["dense_layers"] == [1, 2, 20] and spec["init"] == "torch-orthogonal"
    assert run["task"]["sizes"] == {"train": 1640, "val": 0, "test": 4921}
    assert run["task"]["d_out"] == 2


def test_a_han_layout_needs_the_han_family(tmp_path):
    result = invoke(*TINY, "--han-layout", "published", "--out", tmp_path / "x")
    assert_user_error(result, "--family han")
