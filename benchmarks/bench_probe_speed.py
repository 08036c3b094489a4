"""Forward pass with a Probe against without, measured side by side in one run.

MLP of 20 hidden layers of width 256 (ReLU), batch 1024, CPU, no gradients. Each round times every
variant once, in turn, so that load on the machine falls on all of them alike; the figure is the
median over rounds of each variant's time divided by the bare forward's time in the same round.
A naive probe (one hook, and one reduction, per figure) runs beside the fused one for reference.

    python benchmarks/bench_probe_speed.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from variability import Probe


def mlp(depth: int = 20, width: int = 256) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(width, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


class NaiveProbe:
    """Every figure reduced on its own, straight from its definition (the baseline to beat)."""

    def __init__(self, model: nn.Module, redundancy: bool) -> None:
        self.handles = []
        self.store: dict = {}
        for module in model.modules():
            if isinstance(module, nn.ReLU):
                self.handles.append(module.register_forward_hook(self.hook))
        self.redundancy = redundancy

    def hook(self, module, args, out) -> None:
        z = args[0].detach()
        a = out.detach()
        s = self.store.setdefault(id(module), {})
        s["active"] = s.get("active", 0) + (z > 0).float().sum(0)
        s["sum"] = s.get("sum", 0) + a.sum(0)
        s["sumsq"] = s.get("sumsq", 0) + (a * a).sum(0)
        s["var"] = a.var(0)
        s["z_mean"] = s.get("z_mean", 0) + z.mean(0)
        s["z_sq"] = s.get("z_sq", 0) + (z * z).mean(0)
        s["nonfinite"] = s.get("nonfinite", 0) + (~torch.isfinite(a)).sum()
        s["constant"] = a.std(0) <= 1e-3 * a.pow(2).mean().sqrt()
        if self.redundancy:
            s["corr"] = torch.corrcoef(a.T)

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    model = mlp()
    x = torch.randn(args.batch, 256)

    def bare():
        model(x)

    fused = Probe(model, redundancy=False)
    fused_red = Probe(model, redundancy=True)

    def with_probe(probe):
        def run():
            probe.attach()
            try:
                model(x)
            finally:
                probe.detach()

        return run

    def with_naive(redundancy):
        def run():
            naive = NaiveProbe(model, redundancy)
            try:
                model(x)
            finally:
                naive.close()

        return run

    variants = {
        "bare forward": bare,
        "Probe, no redundancy": with_probe(fused),
        "Probe, with redundancy": with_probe(fused_red),
        "naive hooks, no redundancy": with_naive(False),
        "naive hooks, with redundancy": with_naive(True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.no_grad():
        for fn in variants.values():
            for _ in range(3):
                fn()
        for _ in range(args.rounds):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    base = times["bare forward"]
    print(
        f"MLP depth 20 width 256, batch {args.batch}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds"
    )
    print(f"{'variant':<30} {'median ms':>10} {'ratio to bare':>14}")
    for name, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"{name:<30} {1e3 * statistics.median(values):>10.2f} {ratio:>14.3f}")


if __name__ == "__main__":
    main()
