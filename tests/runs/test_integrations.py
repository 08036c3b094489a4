"""The optional integrations: TensorBoard scalars and the PyTorch Lightning callback."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from variability.runs.lightning import MonitorCallback
from variability.runs.monitor import Monitor
from variability.runs.run_dir import read_metrics


def test_tensorboard_scalars_match_the_records(tmp_path, small_mlp, data):
    x, y = data
    model = small_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with Monitor(model, tmp_path / "run", every=2, probe_inputs=x, tensorboard=True,
                 quiet=True, warn=False) as monitor:  # fmt: skip
        for step in range(5):
            with monitor.step(step):
                loss = nn.functional.mse_loss(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            monitor.log(loss=loss)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    probes = read_metrics(tmp_path / "run", "probe").set_index(["inputs", "site", "step"])
    for inputs in ("batch", "probe_set"):
        scalars = events.Scalars(f"variability/{inputs}/3")
        assert [s.step for s in scalars] == [0, 2, 4]
        for s in scalars:
            assert s.value == pytest.approx(probes.loc[(inputs, "3", s.step), "variability"])
    gradient = events.Scalars("gradient_rms/output")
    assert [s.step for s in gradient] == [0, 2, 4]
    assert gradient[1].value == pytest.approx(probes.loc[("batch", "output", 2), "gradient_rms"])
    steps = read_metrics(tmp_path / "run", "step").set_index("step")
    losses = events.Scalars("train/loss")
    assert [s.value for s in losses] == pytest.approx(list(steps["loss"]))


class Regression(pl.LightningModule):
    def __init__(self, net: nn.Module, fail_at: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.fail_at = fail_at
        self.losses: list[float] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.global_step == self.fail_at:
            raise RuntimeError("bug in training_step")
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def fit(module: pl.LightningModule, callback: MonitorCallback, x, y) -> None:
    trainer = pl.Trainer(
        max_steps=12,
        accelerator="cpu",
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))


def test_lightning_callback_records_every_nth_step(tmp_path, small_mlp, hook_count, data):
    x, y = data
    module = Regression(small_mlp())
    fit(
        module,
        MonitorCallback(tmp_path / "run", every=4, probe_inputs=x[:20], quiet=True, warn=False),
        x,
        y,
    )
    assert hook_count(module) == 0
    probes = read_metrics(tmp_path / "run", "probe")
    assert sorted(probes["step"].unique()) == [0, 4, 8]
    batch = probes[probes["inputs"] == "batch"]
    assert set(batch["samples"]) == {16} and batch["gradient_rms"].notna().all()
    assert set(probes[probes["inputs"] == "probe_set"]["samples"]) == {20}
    steps = read_metrics(tmp_path / "run", "step").set_index("step")
    losses = module.losses  # losses[i] is the loss of global step i
    assert steps.loc[4, "loss"] == pytest.approx(sum(losses[1:5]) / 4)
    assert steps.loc[8, "steps"] == 4
    assert list(steps["lr"]) == pytest.approx([0.05] * len(steps))


def test_lightning_exception_leaves_no_hooks(tmp_path, small_mlp, hook_count, data):
    x, y = data
    module = Regression(small_mlp(), fail_at=4)  # a recorded step: hooks are attached
    with pytest.raises(RuntimeError, match="bug in training_step"):
        fit(module, MonitorCallback(tmp_path / "run", every=4, quiet=True, warn=False), x, y)
    assert hook_count(module) == 0
    probes = read_metrics(tmp_path / "run", "probe")
    assert sorted(probes["step"].unique()) == [0]
