"""V of a ReLU site against float64: the compiled kernel and PyTorch's reductions, side by side.

For each seed, a random Linear(3, 5) + ReLU site scaled by a random factor in [1, 1000] is probed
once with the compiled kernel (probes/kernels.py) and once with PyTorch operations; each V is
compared with V computed in float64 from the very float32 values the probe saw. Printed: the
median, 99th percentile and largest relative error over the seeds. Explains ``kernels.BLOCK``.

    python benchmarks/bench_kernel_precision.py [--seeds 300] [--rows 64 1024] [--block 16]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from variability import Probe
from variability.probes import kernels


def float64_v(a: torch.Tensor) -> float:
    values = a.double().numpy()
    variance = values.var(0)
    return float(np.sqrt(variance.sum() / (variance + values.mean(0) ** 2).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--rows", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--block", type=int, default=kernels.BLOCK, help="samples per block")
    args = parser.parse_args()
    kernels.BLOCK = args.block
    site = nn.Sequential(nn.Identity())
    print(f"kernel block: {kernels.BLOCK} samples; {args.seeds} seeds")
    for rows in args.rows:
        errors: dict[bool, list[float]] = {True: [], False: []}
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            layer = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
            factor = float(np.random.default_rng(seed).uniform(1, 1000))
            with torch.no_grad():
                a = layer(torch.randn(rows, 3)) * factor
            reference = float64_v(a)
            for compiled in (True, False):
                kernels.ENABLED = compiled
                with Probe(site, sites=["0"]) as probe, torch.no_grad():
                    site(a)
                errors[compiled].append(abs(probe.results()["0"].variability / reference - 1))
        kernels.ENABLED = True
        for compiled, name in ((True, "compiled kernel"), (False, "PyTorch operations")):
            e = np.array(errors[compiled])
            print(
                f"  {rows:>5} rows, {name:<18} median {np.median(e):.1e}  "
                f"99th percentile {np.quantile(e, 0.99):.1e}  largest {e.max():.1e}"
            )


if __name__ == "__main__":
    main()
