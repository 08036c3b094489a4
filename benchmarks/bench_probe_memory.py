"""Peak memory while probing 10,000 against 1,000,000 samples through the same model.

Each size runs in its own fresh process (peak resident memory, ru_maxrss, cannot be reset inside a
process). Inputs are generated batch by batch, so any growth would come from the probe. The target:
the two peaks are the same within 5%.

    python benchmarks/bench_probe_memory.py
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch
from torch import nn


def child(samples: int, batch: int) -> None:
    from variability import Probe

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = 128
    for i in range(8):
        layers += [nn.Linear(16 if i == 0 else width, width), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(width, 4))
    generator = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    with Probe(model) as probe, torch.no_grad():
        done = 0
        while done < samples:
            rows = min(batch, samples - done)
            model(torch.randn(rows, 16, generator=generator))
            done += rows
    results = probe.results()
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{samples} {peak_kib} {elapsed:.2f} {results.samples}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch)
        return
    peaks = {}
    for samples in (10_000, 1_000_000):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(samples), "--batch", str(args.batch)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        n, peak, elapsed, seen = int(out[0]), int(out[1]), float(out[2]), int(out[3])
        assert seen == n
        peaks[n] = peak
        print(f"{n:>9} samples: peak RSS {peak / 1024:8.1f} MiB  ({elapsed:.1f} s)")
    ratio = peaks[1_000_000] / peaks[10_000]
    print(f"peak at 1,000,000 / peak at 10,000 = {ratio:.3f} (target: within 0.95 to 1.05)")


if __name__ == "__main__":
    main()
