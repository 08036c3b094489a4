"""Forward plus backward of a Han layer versus nn.Linear at the same width, timed side by side.

    python benchmarks/bench_han.py                      # width 1024, batch 4096, CPU
    python benchmarks/bench_han.py --width 256 --batch 1024 --repeats 50

Both layers get the same input (requiring grad, as inside a network) and the same incoming
gradient; a step is ``layer(x).backward(g)`` with gradients for the input and every parameter.
The two are timed alternately, round after round, so that a change in machine load hits both
alike; the figure reported is the ratio of the median step times (the ratio of the fastest
steps is printed too).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from variability.arch import HanLayer


def _step(layer: nn.Module, x: torch.Tensor, incoming: torch.Tensor) -> None:
    x.grad = None
    layer.zero_grad(set_to_none=True)
    layer(x).backward(incoming)


def _timed(layer: nn.Module, x: torch.Tensor, g: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    _step(layer, x, g)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.width, generator=generator).to(device).requires_grad_(True)
    incoming = torch.randn(args.batch, args.width, generator=generator).to(device)
    layers = {
        "HanLayer": HanLayer(args.width, generator=generator).to(device),
        "nn.Linear": nn.Linear(args.width, args.width).to(device),
    }
    for layer in layers.values():
        for _ in range(args.warmup):
            _step(layer, x, incoming)

    times: dict[str, list[float]] = {name: [] for name in layers}
    order = list(layers)
    for round_ in range(args.repeats):
        for name in order if round_ % 2 == 0 else reversed(order):
            times[name].append(_timed(layers[name], x, incoming, device))

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"device {device}, {torch.get_num_threads()} threads"
    )
    print(f"width {args.width}, batch {args.batch}, forward+backward, {args.repeats} rounds")
    for name, values in times.items():
        print(
            f"  {name:<10} median {statistics.median(values) * 1e3:8.2f} ms   "
            f"fastest {min(values) * 1e3:8.2f} ms"
        )
    median_ratio = statistics.median(times["nn.Linear"]) / statistics.median(times["HanLayer"])
    fastest_ratio = min(times["nn.Linear"]) / min(times["HanLayer"])
    print(f"  Linear / Han: {median_ratio:.1f}x (medians), {fastest_ratio:.1f}x (fastest steps)")
    return median_ratio


if __name__ == "__main__":
    main()
