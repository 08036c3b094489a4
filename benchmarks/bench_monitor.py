"""Training-step time with a Monitor, against the bare loop and two other tools, in one run.

An MLP of 20 hidden layers of width 256 (ReLU), batch 512, CPU, SGD on an MSE loss. Variants,
each on its own copy of the same model (hooks of one never touch another):

- bare:           the training step alone
- monitor/50:     ``Monitor(every=50)``: one recorded step in 50 (the default)
- monitor/1:      ``Monitor(every=1)``: every step recorded (figures at 20 sites, gradient RMS)
- hooks/1:        the probe's hooks alone on every step (``Probe(gradients=True)`` attached and
                  reset, no figures computed): the share of monitor/1 spent in the engine's hooks
- hooks+figures/1: the same plus ``probe.results()`` every step: monitor/1 less the writing
- delve:          delve's ``SaturationTracker`` hooks (a running covariance per layer and batch;
                  its saturation figure, an eigendecomposition made once per epoch, is not timed)
- fastai:         fastai's ``ActivationStats`` hooks (mean, std, near-zero share per layer)

A round runs 50 steps of every variant in turn, so that load on the shared machine falls on all
alike; a variant's figure is the median over rounds of its time divided by the bare loop's time
in the same round. delve and fastai come from the ``bench`` extra (``pip install -e ".[bench]"``,
best in a separate virtual environment: see docs/benchmarks.md); a variant whose package is
missing is reported as such and skipped.

    python benchmarks/bench_monitor.py [--rounds 12] [--steps 50]
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import statistics
import tempfile
import time
import types
from collections.abc import Callable

import torch
from bench_probe_speed import mlp  # the same MLP as the probe's benchmark (seeded)
from torch import nn

from variability import Probe
from variability.runs.monitor import Monitor


class Variant:
    """A model copy, its optimizer, and what runs around each step."""

    def __init__(self, name: str, model: nn.Module) -> None:
        self.name = name
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        self.step_index = 0

    def around(self, step: int):  # a context manager for the step; none by default
        return _nothing

    def after(self, loss: torch.Tensor) -> None:
        pass

    def close(self) -> None:
        pass


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


_nothing = _Nothing()


class MonitorVariant(Variant):
    def __init__(self, name: str, model: nn.Module, every: int, folder: str) -> None:
        super().__init__(name, model)
        folder = os.path.join(folder, name.replace("/", "-"))
        self.monitor = Monitor(model, folder, every=every, quiet=True, warn=False)

    def around(self, step: int):
        return self.monitor.step(step)

    def after(self, loss: torch.Tensor) -> None:
        self.monitor.log(loss=loss)

    def close(self) -> None:
        self.monitor.close()


class ProbeVariant(Variant):
    """The probe engine alone, attached on every step: what a recorded step costs before the
    monitor writes anything."""

    def __init__(self, name: str, model: nn.Module, figures: bool) -> None:
        super().__init__(name, model)
        self.probe = Probe(model, gradients=True, redundancy=False)
        self.figures = figures

    def around(self, step: int):
        self.probe.reset()
        return self.probe

    def after(self, loss: torch.Tensor) -> None:
        if self.figures:
            self.probe.results()
        self.probe.reset()


class DelveVariant(Variant):
    def __init__(self, model: nn.Module, folder: str) -> None:
        super().__init__("delve", model)
        from delve import SaturationTracker

        logging.disable(logging.INFO)  # delve logs every layer it hooks
        try:
            self.tracker = SaturationTracker(
                os.path.join(folder, "delve"), save_to="csv", modules=model, device="cpu"
            )
        finally:
            logging.disable(logging.NOTSET)


class FastaiVariant(Variant):
    """fastai's ActivationStats driven without a Learner: its callback reads ``model``,
    ``training`` and ``train_iter`` from ``learn``, which a namespace provides."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__("fastai", model)
        from fastai.callback.hook import ActivationStats

        self.callback = ActivationStats()
        self.callback.learn = types.SimpleNamespace(model=model, training=True, train_iter=0)
        self.callback.before_fit()

    def around(self, step: int):
        self.callback.learn.train_iter = step
        self.callback.before_batch()
        return _nothing

    def after(self, loss: torch.Tensor) -> None:
        self.callback.after_batch()

    def close(self) -> None:
        self.callback.after_fit()


def make_variants(base: nn.Module, folder: str) -> tuple[list[Variant], list[str]]:
    variants: list[Variant] = [
        Variant("bare", copy.deepcopy(base)),
        MonitorVariant("monitor/50", copy.deepcopy(base), 50, folder),
        MonitorVariant("monitor/1", copy.deepcopy(base), 1, folder),
        ProbeVariant("hooks/1", copy.deepcopy(base), figures=False),
        ProbeVariant("hooks+figures/1", copy.deepcopy(base), figures=True),
    ]
    missing = []
    for name, build in (
        ("delve", lambda: DelveVariant(copy.deepcopy(base), folder)),
        ("fastai", lambda: FastaiVariant(copy.deepcopy(base))),
    ):
        try:
            variants.append(build())
        except ImportError as error:
            missing.append(f"{name}: not installed ({error})")
    return variants, missing


def run_steps(variant: Variant, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    model, optimizer = variant.model, variant.optimizer
    loss_fn: Callable = nn.functional.mse_loss
    start = time.perf_counter()
    for _ in range(steps):
        with variant.around(variant.step_index):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        variant.after(loss)
        variant.step_index += 1
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=50, help="steps per variant per round")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 256, generator=generator)
    y = torch.randn(args.batch, 10, generator=generator)
    with tempfile.TemporaryDirectory() as folder:
        variants, missing = make_variants(mlp(), folder)
        for variant in variants:  # warm-up: first calls allocate and build caches
            run_steps(variant, x, y, 3)
        times: dict[str, list[float]] = {v.name: [] for v in variants}
        ratios: dict[str, list[float]] = {v.name: [] for v in variants}
        for _ in range(args.rounds):
            round_times = {v.name: run_steps(v, x, y, args.steps) for v in variants}
            for name, seconds in round_times.items():
                times[name].append(seconds / args.steps)
                ratios[name].append(seconds / round_times["bare"])
        for variant in variants:
            variant.close()
    print(
        f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"MLP 20 x 256 (ReLU), batch {args.batch}, SGD + MSE, CPU; {args.rounds} rounds of "
        f"{args.steps} steps per variant"
    )
    for name in times:
        median = statistics.median(times[name]) * 1e3
        ratio = statistics.median(ratios[name])
        spread = f"{min(ratios[name]):.3f}..{max(ratios[name]):.3f}"
        print(f"  {name:<15} {median:8.2f} ms/step   x{ratio:.3f} of bare (rounds: {spread})")
    for line in missing:
        print(f"  {line}")


if __name__ == "__main__":
    main()
