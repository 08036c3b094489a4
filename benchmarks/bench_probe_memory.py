"""Peak memory while probing 10,000 against 1,000,000 samples through the same model.

Each size runs in its own fresh process (peak resident memory, ru_maxrss, cannot be reset inside a
process). Both processes first import and warm the whole path: a probe fed a few batches of the
same size, and its ``results()``. That fixes the process's baseline (libraries, lazily allocated
buffers, thread pools), which otherwise moves by tens of MiB from run to run and would hide or fake
a few percent of growth. Then a fresh probe is fed the samples, batch by batch (inputs generated
on the fly, so any growth comes from the probe), and its results are computed.

Printed per size: the whole-process peak, the peak's growth over the warmed-up peak, and the growth
of the current resident set from after the warm-up to after the run (what the probe kept). The
targets: the two peaks the same within 5%, and no growth with the number of samples.

    python benchmarks/bench_probe_memory.py [--batch 2000] [--leak]

``--leak`` keeps every input batch in a list during the measured run (128 KiB per batch, outside
the probe): a check that the measurement sees memory kept per batch.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch
from torch import nn

WIDTH = 128
WARMUP_BATCHES = 5


def model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(8):
        layers += [nn.Linear(16 if i == 0 else WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(WIDTH, 4))


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def feed(net: nn.Module, samples: int, batch: int, seed: int, kept: list | None = None):
    from variability import Probe

    generator = torch.Generator().manual_seed(seed)
    with Probe(net) as probe, torch.no_grad():
        done = 0
        while done < samples:
            rows = min(batch, samples - done)
            x = torch.randn(rows, 16, generator=generator)
            net(x)
            if kept is not None:
                kept.append(x)
            done += rows
    return probe.results()


def child(samples: int, batch: int, leak: bool) -> None:
    net = model()
    feed(net, WARMUP_BATCHES * batch, batch, seed=2)
    base_peak, base_now = peak_kib(), current_kib()
    kept: list | None = [] if leak else None
    start = time.perf_counter()
    results = feed(net, samples, batch, seed=1, kept=kept)
    elapsed = time.perf_counter() - start
    peak, now = peak_kib(), current_kib()
    print(samples, peak, peak - base_peak, now - base_now, f"{elapsed:.2f}", results.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--leak", action="store_true", help="keep each input batch (a check)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch, args.leak)
        return
    print(
        f"MLP 8 x {WIDTH} (ReLU), batch {args.batch}, torch {torch.__version__}, "
        f"warm-up {WARMUP_BATCHES} batches + results() in each process"
        + (", KEEPING every input batch" if args.leak else "")
    )
    peaks = {}
    for samples in (10_000, 1_000_000):
        command = [sys.executable, __file__, "--child", str(samples), "--batch", str(args.batch)]
        out = subprocess.run(
            command + (["--leak"] if args.leak else []),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        n, peak, peak_growth, kept, elapsed, seen = (
            int(out[0]),
            int(out[1]),
            int(out[2]),
            int(out[3]),
            float(out[4]),
            int(out[5]),
        )
        assert seen == n
        peaks[n] = peak
        print(
            f"{n:>9} samples: peak RSS {peak / 1024:7.1f} MiB, peak growth over warm-up "
            f"{peak_growth / 1024:6.1f} MiB, resident growth {kept / 1024:6.1f} MiB "
            f"({elapsed:.1f} s)"
        )
    ratio = peaks[1_000_000] / peaks[10_000]
    print(f"peak at 1,000,000 / peak at 10,000 = {ratio:.3f} (target: within 0.95 to 1.05)")


if __name__ == "__main__":
    main()
