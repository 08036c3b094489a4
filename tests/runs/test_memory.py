"""Memory does not grow over 10,000 monitored steps: no tensor is kept from step to step."""

from __future__ import annotations

import gc

import torch
from torch import nn

from variability.runs.monitor import Monitor
from variability.runs.run_dir import read_metrics


def live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_ten_thousand_monitored_steps_keep_no_tensor(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(8, 2)
    y = torch.randn(8, 1)
    probe_set = torch.randn(16, 2)
    counts = {}
    with Monitor(
        model, tmp_path / "run", every=50, probe_inputs=probe_set, quiet=True, warn=False
    ) as monitor:
        for step in range(1, 10_001):
            with monitor.step(step):
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()  # gradients pile up in .grad: fixed-size tensors, no growth
            monitor.log(loss=loss)
            if step in (1_000, 10_000):
                counts[step] = live_tensors()
    assert counts[10_000] <= counts[1_000], counts
    probes = read_metrics(tmp_path / "run", "probe")
    batch = probes[probes["inputs"] == "batch"]
    assert batch["step"].nunique() == 200  # the hooks ran on every 50th step
    assert set(batch["samples"]) == {8} and batch["gradient_rms"].notna().all()
    assert set(probes[probes["inputs"] == "probe_set"]["samples"]) == {16}
