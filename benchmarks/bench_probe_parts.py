"""What one probe site costs per batch, part by part, beside the layer that made the activation.

Width 256, batch 1024, float32, CPU: the 256 x 256 layer; the probe's per-unit sums by the
compiled kernel and by PyTorch operations; the cross products of the redundancy figure as the
probe takes them (lower triangle in block columns), as a full product, and as BLAS ``ssyrk``
(SciPy's OpenBLAS, with as many threads as torch, measured last: its threads and torch's spin
against each other when the two alternate). Each part runs its rounds in a block after a
warm-up; printed: the median microseconds. Explains docs/benchmarks.md, "Probe speed".

    python benchmarks/bench_probe_parts.py [--rounds 200] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

from variability.probes import kernels
from variability.probes.gram import Gram
from variability.probes.layout import layout_of
from variability.probes.statistics import mean_and_variance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1024, 256, generator=generator)
    a = torch.relu(z)
    weight = torch.randn(256, 256, generator=generator)
    shift = a[0].clone()
    layout = layout_of(a)
    sums = np.zeros((kernels.ROWS, 256))
    scratch = torch.empty(2, 1024, 256)
    gram = Gram()
    lower = np.zeros((256, 256), dtype=np.float32, order="F")
    columns = a.numpy().T  # (256, 1024), Fortran-ordered: what ssyrk reads without a copy

    def pytorch_sums() -> None:
        d = torch.sub(a, shift, out=scratch[0])
        mean_and_variance(d, layout)
        torch.sign(a, out=scratch[1])
        torch.sum(scratch[1], 0)
        mean_and_variance(z, layout)

    parts = {
        "layer: linear 256 -> 256": lambda: torch.nn.functional.linear(a, weight),
        "sums, compiled kernel (a, z)": lambda: kernels.reduce_batch(a, z, shift, layout, sums),
        "sums, compiled kernel (output)": lambda: kernels.reduce_batch(
            a, None, shift, layout, sums
        ),
        "sums, PyTorch operations": pytorch_sums,
        "cross products, block columns": lambda: gram.add(a),
        "cross products, full a^T a": lambda: a.T @ a,
        "cross products, ssyrk": lambda: blas.ssyrk(
            1.0, columns, beta=1.0, c=lower, trans=0, lower=1, overwrite_c=1
        ),
    }
    start = time.perf_counter()
    loaded = kernels.compiled() is not None and kernels.reduce_batch(a, z, shift, layout, sums)
    first_use = time.perf_counter() - start
    if not loaded:
        for name in [n for n in parts if "compiled" in n]:
            del parts[name]
    times: dict[str, list[float]] = {name: [] for name in parts}
    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        for name, part in parts.items():
            for _ in range(10):  # warm-up (and the kernel's first load)
                part()
            for _ in range(args.rounds):
                start = time.perf_counter()
                part()
                times[name].append(time.perf_counter() - start)
    print(f"width 256, batch 1024, float32, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds")  # fmt: skip
    print(f"  first use of the kernel in this process (import numba, load or compile): "
          f"{first_use:.2f} s")  # fmt: skip
    for name, values in times.items():
        print(f"  {name:<34} {1e6 * statistics.median(values):>8.0f} us")


if __name__ == "__main__":
    main()
