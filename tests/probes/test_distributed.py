"""Two gloo processes on CPU, each with half the data, merge to the single-process figures."""

import json
import math

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from variability import Probe


def make_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))


def make_data() -> torch.Tensor:
    x = torch.randn(301, 4, generator=torch.Generator().manual_seed(5))
    x[17, 2] = float("nan")
    return x


def figures(results) -> list[dict]:
    keys = ("variability", "activation_ratio", "activation_shift", "redundancy", "nonfinite")
    return [{k: getattr(s, k) for k in keys} | {"name": s.name} for s in results.all_sites()]


def worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = make_model()
        x = make_data()
        mine = x[:150] if rank == 0 else x[150:]
        with Probe(model) as probe, torch.no_grad():
            for batch in mine.split(64):
                model(batch)
        results = probe.results(distributed=True)
        with open(f"{out}.{rank}", "w") as handle:
            json.dump({"samples": results.samples, "sites": figures(results)}, handle)
    finally:
        dist.destroy_process_group()


def test_two_ranks_merge_to_one_pass(tmp_path):
    out = str(tmp_path / "figures.json")
    mp.spawn(worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    model = make_model()
    with Probe(model) as probe, torch.no_grad():
        model(make_data())
    reference = figures(probe.results())
    for rank in (0, 1):
        with open(f"{out}.{rank}") as handle:
            got = json.load(handle)
        assert got["samples"] == 301
        assert [s["name"] for s in got["sites"]] == [s["name"] for s in reference]
        for mine, ref in zip(got["sites"], reference, strict=True):
            for key, value in ref.items():
                if isinstance(value, float):
                    assert math.isclose(mine[key], value, rel_tol=1e-6, abs_tol=1e-7), key
                else:
                    assert mine[key] == value, key


def test_distributed_data_parallel_is_unwrapped(tmp_path):
    """One gloo process: DDP's forward calls ``.module``; the probe's sites and figures are the
    bare model's."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        model = make_model()
        x = make_data()
        wrapped = nn.parallel.DistributedDataParallel(model)
        with Probe(wrapped) as probe, torch.no_grad():
            for batch in x.split(64):
                wrapped(batch)
        got = figures(probe.results())
    finally:
        dist.destroy_process_group()
    with Probe(model) as probe, torch.no_grad():
        for batch in x.split(64):
            model(batch)
    expected = figures(probe.results())
    assert [s["name"] for s in got] == [s["name"] for s in expected] == ["1", "3", "output"]
    for mine, ref in zip(got, expected, strict=True):
        for key, value in ref.items():
            if isinstance(value, float):
                assert math.isclose(mine[key], value, rel_tol=1e-9, abs_tol=1e-12), key
