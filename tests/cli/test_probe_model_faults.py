"""Faults inside the user's model: one line naming where and what, exit 2, nothing half written.

A model may raise at any batch, not only on the probe's first check of two inputs; it may call
sys.exit; it may fail whatever its inputs. None of that is a traceback, an exit code of the
model's choosing, or a wrong shape blamed.
"""

from __future__ import annotations

import json

import pytest
import torch

from .faulty_models import ARCH, make

PROBE = ("--samples", "100", "--batch-size", "32")  # 4 batches: 0-31, 32-63, 64-95, 96-99


@pytest.fixture
def weights(tmp_path):
    torch.save(make().state_dict(), tmp_path / "w.pt")
    return tmp_path / "w.pt"


def probe(cli, weights, fault: dict, *options):
    kwargs = json.dumps(fault)
    return cli("probe", weights, "--arch", ARCH, "--arch-kwargs", kwargs, *PROBE, *options)


def test_the_healthy_model_probes(cli, weights):
    assert probe(cli, weights, {}, "--quiet").exit_code == 0


def test_a_model_that_fails_on_batches_larger_than_two(cli, weights):
    """It passes the first check (two inputs), then fails on the first real batch."""
    line = probe(cli, weights, {"fault": "rows"}).assert_user_error(
        "w.pt failed on batch 1 of 4 (inputs 0 to 31)", "RuntimeError: cannot take 32 rows"
    )
    assert "second line" not in line


@pytest.mark.parametrize(("call", "where"), [(3, "batch 2 of 4 (inputs 32 to 63)"),
                                             (5, "batch 4 of 4 (inputs 96 to 99)")])  # fmt: skip
def test_a_fault_at_any_batch_names_that_batch(cli, weights, call, where):
    probe(cli, weights, {"fault": "call", "call": call}).assert_user_error(
        f"failed on {where}", f"ValueError: call {call} went wrong"
    )


def test_no_json_is_written_half_and_an_earlier_one_is_kept(cli, weights, tmp_path):
    fresh, earlier = tmp_path / "fresh.json", tmp_path / "earlier.json"
    earlier.write_text('{"kept": true}')
    for target in (fresh, earlier):
        probe(cli, weights, {"fault": "call", "call": 4}, "--json", target).assert_user_error(
            "batch 3 of 4"
        )
    assert not fresh.exists()
    assert earlier.read_text() == '{"kept": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.json", "w.pt"]


@pytest.mark.parametrize("code", [0, 1, None, "bye"])
@pytest.mark.parametrize(("call", "where"), [(1, "a first check"), (3, "batch 2 of 4")])
def test_sys_exit_in_forward_is_a_model_failure(cli, weights, tmp_path, code, call, where):
    target = tmp_path / "p.json"
    fault = {"fault": "exit", "call": call, "code": code}
    probe(cli, weights, fault, "--json", target, "--fail-on", "collapsed").assert_user_error(
        f"failed on {where}", "the model called exit", f"SystemExit({code!r})"
    )
    assert not target.exists()


def test_a_model_that_always_fails_is_not_blamed_on_the_shape(cli, weights):
    line = probe(cli, weights, {"fault": "always"}).assert_user_error(
        "w.pt failed on a first check", "TypeError: this model never works"
    )
    assert "cannot run on inputs of shape" not in line and "expects" not in line


def test_the_shape_is_blamed_when_it_is_the_cause(cli, weights):
    line = probe(cli, weights, {}, "--input-shape", "5").assert_user_error(
        "w.pt cannot run on inputs of shape (5,)", "it expects (2,)"
    )
    assert "failed on" not in line


def test_a_model_that_fails_on_any_shape_is_not_blamed_on_the_shape(cli, weights):
    """Inputs of the wrong shape, but the model fails on the right one too: its own fault."""
    probe(cli, weights, {"fault": "always"}, "--input-shape", "5").assert_user_error(
        "w.pt failed on a first check", "TypeError: this model never works"
    )


def test_verbose_shows_the_traceback_before_the_line(cli, weights):
    run = probe(cli, weights, {"fault": "call", "call": 3}, "--verbose")
    assert run.exit_code == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("Traceback") and "faulty_models.py" in run.stderr
    assert lines[-1].startswith("error: w.pt failed on batch 2 of 4")
