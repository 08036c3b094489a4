"""Two gloo processes on CPU, each with half of every batch, record what one process records."""

from __future__ import annotations

import math
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from variability.runs.monitor import Monitor
from variability.runs.run_dir import read_metrics

STEPS = 6
FIGURES = ("variability", "activation_ratio", "dead_fraction", "gradient_rms", "samples", "rms")


def make_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    return torch.randn(64, 4, generator=generator), torch.randn(64, 2, generator=generator)


def probe_set() -> torch.Tensor:
    return torch.randn(101, 4, generator=torch.Generator().manual_seed(99))


def train(run_dir: str, rank: int = 0, world: int = 1) -> None:
    """SGD on the MSE of the whole batch: each rank takes its rows, and its share of the loss
    (its squared errors over the whole batch's size), so summed gradients are the full ones."""
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with Monitor(
        model, run_dir, every=2, probe_inputs=probe_set(), quiet=True, warn=False
    ) as monitor:
        for step in range(STEPS):
            x, y = batch(step)
            mine = slice(rank * 64 // world, (rank + 1) * 64 // world)
            with monitor.step(step):
                loss = ((model(x[mine]) - y[mine]) ** 2).sum() / y.numel()
                optimizer.zero_grad()
                loss.backward()
                if world > 1:
                    for p in model.parameters():
                        dist.all_reduce(p.grad)
                optimizer.step()


def worker(rank: int, world: int, init_file: str, run_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        train(run_dir, rank, world)
        dist.barrier()  # no rank tears its connections down while another still uses them
    finally:
        dist.destroy_process_group()
    # Known, not understood: in about 1 run in 10 to 20 of this worker (before and after the
    # probe's compiled kernel), a rank aborts in C++ teardown after all its Python code is done
    # ("terminate called without an active exception", no Python frame), which fails the spawn.
    # Not seen in 30 runs of plain gloo collectives, nor in 20 of the probe's distributed test.
    # The records are written and checked here; skip the interpreter's teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_two_ranks_record_the_figures_of_one_process(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ranks")), nprocs=2, join=True)
    train(str(tmp_path / "single"))
    ranks = read_metrics(tmp_path / "ranks")
    single = read_metrics(tmp_path / "single")
    assert list(ranks["type"]).count("start") == 1  # rank 1 wrote nothing
    got = ranks[ranks["type"] == "probe"].set_index(["step", "inputs", "site"]).sort_index()
    want = single[single["type"] == "probe"].set_index(["step", "inputs", "site"]).sort_index()
    assert list(got.index) == list(want.index)
    assert set(got.index.get_level_values("inputs")) == {"batch", "probe_set"}
    assert set(got.index.get_level_values("step")) == {0, 2, 4}
    for key in got.index:
        for figure in FIGURES:
            mine, ref = got.loc[key, figure], want.loc[key, figure]
            if isinstance(ref, float) and math.isnan(ref):
                assert math.isnan(mine), (key, figure)
            else:
                assert math.isclose(mine, ref, rel_tol=1e-5, abs_tol=1e-9), (key, figure, mine, ref)
    assert (got.xs("probe_set", level="inputs")["samples"] == 101).all()
    assert (got.xs("batch", level="inputs")["samples"] == 64).all()
