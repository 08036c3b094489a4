"""Monitor: what it records, when it hooks, hand-checked figures, events, failure paths."""

from __future__ import annotations

import inspect
import json
import math
import warnings

import pandas as pd
import pytest
import torch
from torch import nn

from variability.runs import Monitor, MonitorWarning, RunSetup
from variability.runs.run_dir import RunDirError, read_metrics


def sgd_step(model, optimizer, x, y):
    loss = nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_hand_checked_figures_and_gradient_rms(tmp_path, hand_model):
    """x = [1, 2, -1]: z = x [1, 2], a = relu(z) = [[1, 2], [2, 4], [0, 0]], out = 3 a1 - a2 =
    [1, 2, 0], loss = mean(out^2) = 5/3. dL/dout = 2 out / 3 = [2/3, 4/3, 0]; dL/da = dL/dout
    [3, -1] = [[2, -2/3], [4, -4/3], [0, 0]], whose squares sum to 200/9 over 6 entries."""
    model = hand_model()
    x = torch.tensor([[1.0], [2.0], [-1.0]])
    with Monitor(model, tmp_path / "run", every=1, warn=False, quiet=True) as monitor:
        with monitor.step(0):
            loss = nn.functional.mse_loss(model(x), torch.zeros(3, 1))
            loss.backward()
        monitor.log(loss=loss)
    records = read_metrics(tmp_path / "run")
    sites = records[records["type"] == "probe"].set_index("site")
    assert list(sites.index) == ["1", "output"]
    assert sites.loc["1", "gradient_rms"] == pytest.approx(10 / math.sqrt(27), rel=1e-6)
    assert sites.loc["output", "gradient_rms"] == pytest.approx(math.sqrt(20 / 27), rel=1e-6)
    # per unit: var = 2/3 and 8/3, E[a^2] = 5/3 and 20/3
    assert sites.loc["1", "variability"] == pytest.approx(math.sqrt(0.4), rel=1e-6)
    assert sites.loc["1", "activation_ratio"] == pytest.approx(4 / 6)
    assert sites.loc["1", "samples"] == 3
    step = records[records["type"] == "step"].iloc[0]
    assert step["loss"] == pytest.approx(5 / 3) and step["steps"] == 1


def test_hooks_only_on_recorded_steps_and_removed_after(tmp_path, data, small_mlp, hook_count):
    x, y = data
    model = small_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen = {}
    with Monitor(model, tmp_path / "run", every=3, warn=False, quiet=True) as monitor:
        for step in range(7):
            with monitor.step(step):
                seen[step] = hook_count(model)
                sgd_step(model, optimizer, x, y)
            assert hook_count(model) == 0
    assert [s for s, n in seen.items() if n > 0] == [0, 3, 6]
    assert all(seen[s] == 0 for s in (1, 2, 4, 5))
    probes = read_metrics(tmp_path / "run", "probe")
    assert sorted(probes["step"].unique()) == [0, 3, 6]


@pytest.mark.parametrize("training", [True, False])
def test_exception_in_the_step_leaves_no_hooks_and_the_former_mode(
    tmp_path, data, training, small_mlp, hook_count
):
    x, _y = data
    model = small_mlp()
    model.train(training)
    grid = torch.rand(50, 2)
    monitor = Monitor(model, tmp_path / "run", every=1, probe_inputs=grid, quiet=True, warn=False)
    with pytest.raises(RuntimeError, match="user bug"), monitor.step(0):
        model(x).sum().backward()
        raise RuntimeError("user bug")
    assert hook_count(model) == 0
    assert model.training is training and all(m.training is training for m in model.modules())
    # nothing was recorded for the failed step, and the next step works as usual
    with monitor.step(1):
        model(x).sum().backward()
    monitor.close()
    probes = read_metrics(tmp_path / "run", "probe")
    assert set(probes["step"]) == {1}
    assert hook_count(model) == 0 and model.training is training


class ModeSpy(nn.Module):
    """Records the mode and grad mode of every forward pass."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, x):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        return self.net(x)


def test_probe_set_runs_in_eval_mode_without_gradients(tmp_path, data, small_mlp):
    x, _y = data
    model = ModeSpy(small_mlp())
    grid = torch.rand(10_000, 2) * 2 - 1
    with Monitor(
        model,
        tmp_path / "run",
        every=2,
        probe_inputs=grid,
        probe_batch_size=4096,
        quiet=True,
        warn=False,
    ) as monitor:
        for step in range(3):
            with monitor.step(step):
                model(x).sum().backward()
    training_calls = [c for c in model.calls if c[0] == len(x)]
    probe_calls = [c for c in model.calls if c[0] != len(x)]
    assert all(training and grad for _, training, grad in training_calls)
    assert [n for n, _, _ in probe_calls] == [4096, 4096, 1808] * 2  # steps 0 and 2 only
    assert not any(training or grad for _, training, grad in probe_calls)
    assert model.training
    probes = read_metrics(tmp_path / "run", "probe")
    probe_set = probes[probes["inputs"] == "probe_set"]
    assert set(probe_set["samples"]) == {10_000}
    assert probe_set["gradient_rms"].isna().all()


def test_probe_set_chunks_follow_the_widest_site(tmp_path, data, small_mlp):
    x, _ = data
    narrow, wide = ModeSpy(small_mlp(width=8)), ModeSpy(small_mlp(width=512))
    grid = torch.rand(10_000, 2)
    for model in (narrow, wide):
        with Monitor(model, tmp_path / str(id(model)), every=1, probe_inputs=grid, quiet=True,
                     warn=False) as monitor, monitor.step(0):  # fmt: skip
            model(x).sum().backward()
    assert [n for n, training, _ in narrow.calls if not training] == [8192, 1808]
    assert [n for n, training, _ in wide.calls if not training] == [1024] * 9 + [784]  # 2**19/512


def test_logged_values_are_means_over_the_steps_between_records(tmp_path, data, small_mlp):
    x, _y = data
    model = small_mlp()
    with Monitor(model, tmp_path / "run", every=4, quiet=True, warn=False) as monitor:
        for step in range(10):
            with monitor.step(step):
                model(x)
            monitor.log(loss=float(step), lr=torch.tensor(0.5))
    steps = read_metrics(tmp_path / "run", "step").set_index("step")
    # records at 0 (step 0 alone), 4 (steps 1..4), 8 (5..8); close() writes steps 9..9
    assert list(steps.index) == [0, 4, 8, 9]
    assert list(steps["loss"]) == [0.0, 2.5, 6.5, 9.0]
    assert list(steps["steps"]) == [1, 4, 4, 1]
    assert (steps["lr"] == 0.5).all()


@pytest.fixture
def collapsing_model(small_mlp):
    def make() -> nn.Sequential:
        model = small_mlp(depth=4)
        with torch.no_grad():
            model[4].weight.zero_()  # the third Linear maps every input to its bias
            model[4].bias.fill_(0.3)
        return model

    return make


def test_collapse_is_an_event_recorded_and_shown_once(tmp_path, data, collapsing_model):
    x, _y = data
    model = collapsing_model()
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Monitor(model, tmp_path / "run", every=1, on_event=seen.append) as monitor:
            for step in range(4):
                with monitor.step(step):
                    model(x).sum().backward()
    collapsed = [e for e in seen if e.kind == "collapsed"]
    assert {e.site for e in collapsed} == {"5", "7", "output"}
    assert all(e.step == 0 for e in collapsed)
    events = read_metrics(tmp_path / "run", "event")
    assert len(events) == len(seen)  # each once, although four steps showed it
    assert events.groupby(["kind", "site"]).size().max() == 1
    output = events[(events["kind"] == "collapsed") & (events["site"] == "output")]
    assert "C2C" in output["message"].iloc[0]
    monitor_warnings = [w for w in caught if issubclass(w.category, MonitorWarning)]
    assert len(monitor_warnings) == len(seen)
    assert monitor_warnings[0].filename == __file__  # points at the user's code


def test_each_warning_is_shown_once_by_default(tmp_path, data, capsys, collapsing_model):
    """As a MonitorWarning, which Python prints; not also as a line of the Monitor's own."""
    x, _ = data
    model = collapsing_model()
    with pytest.warns(MonitorWarning) as caught, Monitor(model, tmp_path / "run", every=1) as m:
        for step in range(3):
            with m.step(step):
                model(x)
    assert [str(w.message) for w in caught].count(
        next(e.message for e in m.events if "output collapsed" in e.message)
    ) == 1
    assert "the network's output collapsed" not in capsys.readouterr().err


def test_without_warnings_each_event_is_one_line_on_stderr(
    tmp_path, data, capsys, collapsing_model
):
    x, _ = data
    model = collapsing_model()
    with Monitor(model, tmp_path / "run", every=1, warn=False) as monitor:
        for step in range(3):
            with monitor.step(step):
                model(x)
    err = capsys.readouterr().err
    assert err.count("the network's output collapsed") == 1
    assert err.count("variability: step 0:") == len(monitor.events)


def test_a_monitor_run_leaves_no_empty_checkpoints_folder(tmp_path, data, small_mlp):
    """Only the trainer writes checkpoints; the folder comes with the first one."""
    x, _ = data
    model = small_mlp()
    with Monitor(model, tmp_path / "run", every=1, warn=False, quiet=True) as monitor:
        for step in range(3):
            with monitor.step(step):
                model(x)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.jsonl", "run.json"]


def test_dead_units_and_nonfinite_values_are_events(tmp_path, data, small_mlp):
    x, _ = data
    model = small_mlp()
    with torch.no_grad():
        model[0].bias.fill_(-50.0)  # every unit of the first site is dead
    bad = x.clone()
    bad[3, 0] = float("nan")
    seen = []
    with Monitor(model, tmp_path / "run", every=1, on_event=seen.append, warn=False) as monitor:
        with monitor.step(0):
            model(bad)
        monitor.log(loss=float("inf"))
    kinds = {(e.kind, e.site) for e in seen}
    assert ("dead_units", "1") in kinds
    assert ("nonfinite", "1") in kinds  # the NaN input row reaches the first site
    assert ("nonfinite", "loss") in kinds
    dead = next(e for e in seen if e.kind == "dead_units")
    assert dead.value == 1.0
    step = read_metrics(tmp_path / "run", "step")
    assert step["loss"].isna().all()  # JSON has no Inf: written as null, the event says why


def test_saved_state_keeps_a_resumed_monitor_quiet(tmp_path, data, collapsing_model):
    x, _ = data
    model = collapsing_model()
    first = []
    with Monitor(model, tmp_path / "run", every=1, on_event=first.append, warn=False) as monitor:
        with monitor.step(0):
            model(x)
        state = monitor.state_dict()
    again = []
    with Monitor(
        model, RunSetup(tmp_path / "run", resume_step=0), every=1, on_event=again.append, warn=False
    ) as monitor:
        monitor.load_state_dict(state)
        with monitor.step(1):
            model(x)
    assert first and not again
    records = read_metrics(tmp_path / "run")
    assert list(records[records["type"] == "resume"]["step"]) == [0]
    assert set(records["segment"]) == {0, 1}


def test_an_existing_run_needs_a_resume_step(tmp_path, data, small_mlp):
    x, _ = data
    model = small_mlp()
    with (
        Monitor(model, tmp_path / "run", every=1, warn=False, quiet=True) as monitor,
        monitor.step(0),
    ):
        model(x)
    with pytest.raises(RunDirError, match="resume_step"):
        Monitor(model, tmp_path / "run")


def test_a_run_setup_merges_its_entries_into_run_json(tmp_path, small_mlp):
    setup = RunSetup(tmp_path / "run", info={"config": {"lr": 0.1}, "model": {"note": "mine"}})
    with Monitor(small_mlp(), setup, every=1, quiet=True, warn=False):
        pass
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"] == {"lr": 0.1}
    assert info["model"]["note"] == "mine" and info["model"]["parameters"] > 0  # merged
    assert info["kind"] == "monitor"


def test_the_monitor_takes_the_users_settings_and_no_trainer_plumbing():
    parameters = set(inspect.signature(Monitor).parameters)
    assert {"every", "probe_inputs", "gradients", "redundancy", "dead_warning"} <= parameters
    assert not parameters & {"resume_step", "config", "run_info", "required_bytes"}


def test_no_tensor_outlives_a_recorded_step(tmp_path, data, small_mlp):
    x, _y = data
    model = small_mlp()
    monitor = Monitor(model, tmp_path / "run", every=1, probe_inputs=x, quiet=True, warn=False)
    with monitor.step(0):
        model(x).sum().backward()
    for probe in (monitor._batch_probe, monitor._set_probe):
        assert probe._entries == {} and probe._output is None
    monitor.close()


def test_metrics_read_with_plain_pandas(tmp_path, data, small_mlp):
    x, y = data
    model = small_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, tmp_path / "run", every=2, probe_inputs=x, quiet=True, warn=False) as m:
        for step in range(5):
            with m.step(step):
                loss = sgd_step(model, optimizer, x, y)
            m.log(loss=loss)
    frame = pd.read_json(tmp_path / "run" / "metrics.jsonl", lines=True)
    assert set(frame["type"]) >= {"start", "probe", "step"}
    assert frame["step"].notna().all()
    assert (tmp_path / "run" / "run.json").exists()
