"""V of a ReLU site against float64: the compiled kernel and PyTorch's reductions, side by side.

For each seed, a random Linear(3, 5) + ReLU site scaled by a random factor in [1, 1000] is probed
once with the compiled kernel (probes/kernels.py) and once with PyTorch operations; each V is
compared with V computed in float64 from the very float32 values the probe saw. Printed: the
median, 99th percentile and largest relative error over the seeds; for the kernel also the
amplification K of its sums (largest) and the largest ratio of its error to the bound derived in
tests/probes/rounding.py (at most 1 if the bound holds). Explains ``kernels.BLOCK`` and
docs/figures.md, "Exactness".

    python benchmarks/bench_kernel_precision.py [--seeds 300] [--rows 64 1024] [--block 16]
                                                [--first N]

``--first N`` feeds the first N rows as a batch of their own (1: the reference value c is the
first sample, as it was before it became the first batch's mean).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from variability import Probe
from variability.probes import kernels

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "probes"))
from rounding import amplification, float64_v, kernel_v_bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--rows", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--block", type=int, default=kernels.BLOCK, help="samples per block")
    parser.add_argument("--first", type=int, default=0, help="rows of a first batch of its own")
    args = parser.parse_args()
    kernels.BLOCK = args.block
    site = nn.Sequential(nn.Identity())
    print(f"kernel block: {kernels.BLOCK} samples; {args.seeds} seeds")
    for rows in args.rows:
        errors: dict[bool, list[float]] = {True: [], False: []}
        ks, ratios = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            layer = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
            factor = float(np.random.default_rng(seed).uniform(1, 1000))
            with torch.no_grad():
                a = layer(torch.randn(rows, 3)) * factor
            reference = float64_v(a.numpy())
            if not reference > 0:
                continue
            batches = [a[: args.first], a[args.first :]] if 0 < args.first < rows else [a]
            for compiled in (True, False):
                kernels.ENABLED = compiled
                with Probe(site, sites=["0"], redundancy=False) as probe, torch.no_grad():
                    for batch in batches:
                        site(batch)
                error = abs(probe.results()["0"].variability / reference - 1)
                errors[compiled].append(error)
                if compiled:
                    stats = probe.state().records[0].stats
                    ks.append(amplification(stats))
                    ratios.append(error / kernel_v_bound(stats, reference))
        kernels.ENABLED = True
        for compiled, name in ((True, "compiled kernel"), (False, "PyTorch operations")):
            e = np.array(errors[compiled])
            extra = ""
            if compiled:
                extra = f"  K up to {max(ks):.3g}, error/bound up to {max(ratios):.2g}"
            print(
                f"  {rows:>5} rows, {name:<18} median {np.median(e):.1e}  "
                f"99th percentile {np.quantile(e, 0.99):.1e}  largest {e.max():.1e}{extra}"
            )


if __name__ == "__main__":
    main()
