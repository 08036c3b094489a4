"""Forward pass with a Probe against without, measured side by side in one run.

MLP of 20 hidden layers of width 256 (ReLU), batch 1024, CPU, no gradients. Each round times every
variant's forward pass once, in turn, so that load on the machine falls on all of them alike; the
figure is the median over rounds of each variant's time divided by the bare forward's time in the
same round. Hooks are installed before and removed after each timed forward pass (a probe stays
attached over many batches; attaching is timed once, apart). The probe runs with its compiled
one-pass kernel (probes/kernels.py) and, beside it, with PyTorch operations alone; a naive probe
(one hook, and one reduction, per figure) runs beside them for reference.

    python benchmarks/bench_probe_speed.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import time

import torch
from torch import nn

from variability import Probe
from variability.probes import kernels


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
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = mlp()
    x = torch.randn(args.batch, 256)

    class Hooks:
        """Hooks installed before a variant's forward pass and removed after, outside the timing."""

        def __init__(self, attach, detach) -> None:
            self.attach, self.detach = attach, detach

    fused = Probe(model, redundancy=False)
    fused_red = Probe(model, redundancy=True)
    naive: dict[bool, NaiveProbe] = {}

    def naive_hooks(redundancy: bool) -> Hooks:
        def attach() -> None:
            naive[redundancy] = NaiveProbe(model, redundancy)

        return Hooks(attach, lambda: naive.pop(redundancy).close())

    def torch_ops(probe: Probe) -> Hooks:
        def attach() -> None:
            kernels.ENABLED = False
            probe.attach()

        def detach() -> None:
            probe.detach()
            kernels.ENABLED = True

        return Hooks(attach, detach)

    nothing = Hooks(lambda: None, lambda: None)
    variants = {
        "bare forward": nothing,
        "Probe, no redundancy": Hooks(fused.attach, fused.detach),
        "Probe, with redundancy": Hooks(fused_red.attach, fused_red.detach),
        "  same, PyTorch ops, no red.": torch_ops(fused),
        "  same, PyTorch ops, with red.": torch_ops(fused_red),
        "naive hooks, no redundancy": naive_hooks(False),
        "naive hooks, with redundancy": naive_hooks(True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.no_grad():
        for hooks in variants.values():
            hooks.attach()
            for _ in range(3):
                model(x)
            hooks.detach()
        for _ in range(args.rounds):
            for name, hooks in variants.items():
                hooks.attach()
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
                hooks.detach()
        start = time.perf_counter()
        for _ in range(args.rounds):
            fused_red.attach()
            fused_red.detach()
        attach_ms = 1e3 * (time.perf_counter() - start) / args.rounds
    base = times["bare forward"]
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(
        f"MLP depth 20 width 256, batch {args.batch}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY {policy}, {args.rounds} rounds"
    )
    compiled = "numba " + importlib.metadata.version("numba") if kernels.compiled() else "none"
    print(f"compiled kernel: {compiled}")
    print(f"{'variant':<30} {'median ms':>10} {'ratio to bare':>14}")
    for name, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"{name:<30} {1e3 * statistics.median(values):>10.2f} {ratio:>14.3f}")
    print(f"(Probe attach + detach, once per session, not timed above: {attach_ms:.2f} ms)")


if __name__ == "__main__":
    main()
