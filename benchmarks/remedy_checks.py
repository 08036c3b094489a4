"""The remedy's checks at full size (the tests run smaller versions of the first).

1. FC ReLU, depth 64, width 6, zero biases, Kaiming weights, 20 seeds, 4,096 inputs uniform on
   [-1, 1]^2: how many the toolkit calls collapsed before and after the remedy, and the largest
   dead-unit fraction of any site after.
2. A 4-layer ``nn.TransformerEncoder`` (d_model 64, 4 heads, feed-forward 256) and a ResNet-style
   CNN (stem and 3 stages of 2 residual blocks, batch norm), every weight multiplied by 0.1:
   each site's pre-activation RMS after the remedy, against its target of 1 (read with hooks of
   this script, not the toolkit's figures), and the time the remedy took.

Every check runs for each method that sets the second moment (lsuv, autoinit).

    python benchmarks/remedy_checks.py [--seeds 20] [--methods lsuv,autoinit]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from torch import nn

from variability import build_model, probe_model, reinitialize


def fc_check(method: str, seeds: int) -> str:
    x = torch.rand(4096, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    before = after = 0
    worst_dead = 0.0
    seconds = []
    for seed in range(seeds):
        model = build_model("fc", 2, 1, 64, width=6, seed=seed)
        before += probe_model(model, x, redundancy=False).network_collapsed
        started = time.perf_counter()
        reinitialize(model, x, method)
        seconds.append(time.perf_counter() - started)
        results = probe_model(model, x, redundancy=False)
        after += results.network_collapsed
        worst_dead = max(worst_dead, max(s.dead_fraction for s in results.sites))
    return (
        f"FC ReLU 64 x 6, {seeds} seeds, {method}: collapsed {before}/{seeds} before, "
        f"{after}/{seeds} after; largest dead fraction after {worst_dead:.1%}; "
        f"{sum(seconds) / len(seconds):.1f} s per model"
    )


class Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or channels_in != channels:
            self.down = nn.Sequential(
                nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.down is None else self.down(x)
        return self.relu2(out)


def resnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        Block(16, 16), Block(16, 16),
        Block(16, 32, 2), Block(32, 32),
        Block(32, 64, 2), Block(64, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )  # fmt: skip


def rms_at(model: nn.Module, x: torch.Tensor, modules: dict[str, nn.Module], output: bool):
    sums = {name: [0.0, 0] for name in modules}

    def add(name: str, z: torch.Tensor) -> None:
        sums[name][0] += float(z.detach().double().square().sum())
        sums[name][1] += z.numel()

    handles = [
        m.register_forward_hook(lambda _m, _a, out, n=n: add(n, out))
        if output
        else m.register_forward_pre_hook(lambda _m, args, n=n: add(n, args[0]))
        for n, m in modules.items()
    ]
    try:
        model.eval()
        with torch.no_grad():
            for batch in x.split(128):
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return {name: math.sqrt(s / n) for name, (s, n) in sums.items()}


def shrink(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.1)
    return model


def scaled_checks(method: str) -> list[str]:
    lines = []
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 256, batch_first=True)
    encoder = shrink(nn.TransformerEncoder(layer, 4, enable_nested_tensor=False))
    x = torch.randn(512, 16, 64)
    linear1 = {f"layers.{i}.linear1": encoder.layers[i].linear1 for i in range(4)}
    before = rms_at(encoder, x, linear1, output=True)
    started = time.perf_counter()
    reinitialize(encoder, x, method, batch_size=128)
    seconds = time.perf_counter() - started
    after = rms_at(encoder, x, linear1, output=True)
    lines.append(
        _rms_line("TransformerEncoder 4 x 64, weights x 0.1", method, before, after, seconds)
    )
    torch.manual_seed(0)
    cnn = shrink(resnet())
    images = torch.randn(256, 3, 32, 32)
    relus = {n: m for n, m in cnn.named_modules() if isinstance(m, nn.ReLU)}
    before = rms_at(cnn, images, relus, output=False)
    started = time.perf_counter()
    reinitialize(cnn, images, method, batch_size=64)
    seconds = time.perf_counter() - started
    after = rms_at(cnn, images, relus, output=False)
    lines.append(
        _rms_line("ResNet-style CNN, 13 sites, weights x 0.1", method, before, after, seconds)
    )
    return lines


def _rms_line(what: str, method: str, before: dict, after: dict, seconds: float) -> str:
    error = max(abs(v - 1.0) for v in after.values())
    return (
        f"{what}, {method}: pre-activation RMS before {min(before.values()):.3g} to "
        f"{max(before.values()):.3g}, after {min(after.values()):.4f} to "
        f"{max(after.values()):.4f} (largest error {error:.1e} of the target 1); {seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--methods", default="lsuv,autoinit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.2f}")
    for method in args.methods.split(","):
        print(fc_check(method, args.seeds), flush=True)
        for line in scaled_checks(method):
            print(line, flush=True)


if __name__ == "__main__":
    main()
