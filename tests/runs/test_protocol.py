"""The Han paper's training protocol: schedule, per-step batches, split, trainer."""

from __future__ import annotations

import pytest
import torch

from variability import build_model, load_model, load_task
from variability.runs.batches import IndependentBatches
from variability.runs.protocol import PROTOCOLS, protocol_named
from variability.runs.schedule import StepDecay
from variability.runs.trainer import TrainConfig, TrainConfigError, train


def test_the_rate_at_each_milestone_of_the_papers_schedule():
    """x0.2 after steps 20,000, 28,000 and 36,000 of 40,000: the step after each milestone is the
    first at the lower rate."""
    schedule = PROTOCOLS["paper"].train_config().schedule
    assert schedule.milestone_steps(40_000) == (20_000, 28_000, 36_000)
    expected = {
        1: 1.0,
        20_000: 1.0,
        20_001: 0.2,
        28_000: 0.2,
        28_001: 0.04,
        36_000: 0.04,
        36_001: 0.008,
        40_000: 0.008,
    }
    for step, factor in expected.items():
        assert schedule.multiplier(step, 40_000) == pytest.approx(factor), step


def test_each_step_takes_100_distinct_training_rows_and_never_a_test_row():
    task = load_task("checkerboard", 0, val_fraction=0, outputs=2)
    batches = IndependentBatches(len(task.x_train), 100, seed=5, device=torch.device("cpu"))
    test_points = set(task.indices["test"].tolist())
    seen: set[tuple[int, ...]] = set()
    for step in range(1, 301):
        rows = batches.indices(step)
        assert len(rows) == 100 and len(set(rows.tolist())) == 100
        grid_points = task.indices["train"][rows].tolist()
        assert not test_points & set(grid_points)
        seen.add(tuple(sorted(rows.tolist())))
        # a function of (seed, step) alone: drawing again, or from a new sampler, is the same
        again = IndependentBatches(len(task.x_train), 100, seed=5, device=torch.device("cpu"))
        assert torch.equal(again.indices(step), rows)
    assert len(seen) == 300  # a fresh draw each step, not epochs of one permutation
    other_seed = IndependentBatches(len(task.x_train), 100, seed=6, device=torch.device("cpu"))
    assert not torch.equal(other_seed.indices(1), batches.indices(1))


def test_the_trainer_follows_the_schedule(tmp_path):
    """After a run, the optimizer's rate in the last checkpoint is the decayed one."""
    task = load_task("checkerboard", 0, outputs=2)
    config = PROTOCOLS["paper"].train_config(steps=20, every=10, eval_every=10, lr=0.01)
    assert (config.optimizer, config.momentum, config.batch_size) == ("sgd", 0.9, 100)
    model = build_model("han", 2, 2, 4, width=6, layout="published", seed=0)
    train(model, task, config, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01 * 0.2**3)
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9


def test_without_a_validation_split_the_last_checkpoint_is_kept(tmp_path):
    task = load_task("checkerboard", 0, val_fraction=0, outputs=2)
    config = TrainConfig(steps=12, every=4, eval_every=4, batch_size=100, sampling="independent")
    result = train(build_model("fc", 2, 2, 2, width=8, seed=0), task, config, tmp_path / "r")
    assert result.selection == "final" and result.best_step == 12
    assert result.val != result.val  # NaN: there is no validation split
    assert "no validation split" in result.summary()
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["model"]
    kept = load_model(tmp_path / "r" / "model.pt").state_dict()
    assert all(torch.equal(kept[name], value) for name, value in state.items())
    x, y = task.split("test")
    assert result.test == pytest.approx(task.score(load_model(tmp_path / "r" / "model.pt")(x), y))


def test_explicit_settings_win_over_the_protocol():
    config = PROTOCOLS["paper"].train_config(steps=300, lr=None)
    assert config.steps == 300 and config.lr == 0.05 and config.sampling == "independent"
    assert PROTOCOLS["paper"].options_for("checkerboard") == {"outputs": 2}
    assert PROTOCOLS["paper"].options_for("digits") == {}


@pytest.mark.parametrize(
    "settings",
    [
        {"lr_milestones": (0.5, 0.2)},
        {"lr_milestones": (1.5,)},
        {"lr_factor": 0.0},
        {"sampling": "x"},
    ],
)
def test_bad_schedules_and_samplings_are_refused(settings):
    with pytest.raises(TrainConfigError):
        TrainConfig(**settings)


def test_unknown_protocol():
    with pytest.raises(ValueError, match="known: default, paper"):
        protocol_named("theirs")


def test_step_decay_without_milestones_keeps_the_rate():
    assert StepDecay().multiplier(10, 10) == 1.0
