"""The probe on networks people train, against the bare forward and fastai-style hooks.

Three models, random weights, CPU, eval mode, no gradients:

- a ResNet-18-style CNN (basic blocks [2, 2, 2, 2], in-place ReLUs), batch 128 of 3 x 64 x 64;
- a 4-layer transformer encoder (``nn.TransformerEncoderLayer``, d_model 256, 4 heads,
  feed-forward 1024, GELU as a module), batch 64 of sequences of 64;
- a BERT-style encoder (transformers' ``BertModel`` built from a config: 4 layers, hidden 256,
  4 heads, intermediate 1024; no download), batch 64 of 64 token ids.

Variants, each timed once per round, in turn, so that load on the machine falls on all alike:
the bare forward; the forward under ``Probe(model, redundancy=False)``; and under
fastai-``ActivationStats``-style hooks written here (per activation module: mean, std and the
fraction of values near zero, kept per batch). The figure is the median over rounds of each
variant's time over the bare forward's time in the same round. The probe and the hooks stay
attached over the timed rounds, as they would over a probe set.

    python benchmarks/bench_real_models.py [--rounds 15] [--models resnet,encoder,bert]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from variability import Probe
from variability.probes.activations import activation_for_module


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, blocks, inputs = (64, 128, 256, 512), [], 64
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            pair = (BasicBlock(inputs, width, stride), BasicBlock(width, width, 1))
            blocks.append(nn.Sequential(*pair))
            inputs = width
        self.layers = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))

    def forward(self, x):
        return self.head(self.layers(self.maxpool(self.relu(self.bn1(self.conv1(x))))))


def resnet() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return ResNet18().eval(), torch.randn(128, 3, 64, 64)


def encoder() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(256, 4, 1024, activation=nn.GELU(), batch_first=True)
    model = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
    return model.eval(), torch.randn(64, 64, 256)


def bert() -> tuple[nn.Module, torch.Tensor]:
    import transformers

    config = transformers.BertConfig(
        vocab_size=1000,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    return transformers.BertModel(config).eval(), torch.randint(0, 1000, (64, 64))


MODELS: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {
    "resnet": resnet,
    "encoder": encoder,
    "bert": bert,
}


class FastaiStyleStats:
    """fastai's ActivationStats, reduced to what it keeps per activation module and batch:
    the mean, the std and the fraction of values near zero (<= 0.05)."""

    def __init__(self, model: nn.Module) -> None:
        self.stats: dict[str, list[tuple[float, float, float]]] = {}
        self.handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if activation_for_module(module) is not None
        ]

    def _hook(self, name: str):
        def hook(module, args, output):
            a = output.detach().float()
            near_zero = (a <= 0.05).float().mean()
            self.stats.setdefault(name, []).append(
                (a.mean().item(), a.std().item(), near_zero.item())
            )

        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def bench(name: str, rounds: int) -> dict[str, float]:
    model, x = MODELS[name]()
    probe = Probe(model, redundancy=False)
    fastai = None

    def bare() -> None:
        model(x)

    def probed() -> None:
        probe.attach()
        model(x)

    def hooked() -> None:
        model(x)

    variants = {"bare": bare, "probe": probed, "fastai-style hooks": hooked}
    times: dict[str, list[float]] = {v: [] for v in variants}
    with torch.no_grad():
        for _ in range(2):  # warm-up: first-use costs (the kernel's compilation) are not timed
            with probe:
                model(x)
        probe.reset()
        for _ in range(rounds):
            for variant, run in variants.items():
                if variant == "fastai-style hooks":
                    fastai = FastaiStyleStats(model)
                start = time.perf_counter()
                run()
                times[variant].append(time.perf_counter() - start)
                if variant == "probe":
                    probe.detach()
                if fastai is not None:
                    fastai.close()
                    fastai = None
    results = probe.results()
    bare_times = times["bare"]
    out = {"bare ms": 1e3 * statistics.median(bare_times), "sites": len(results.sites)}
    for variant in ("probe", "fastai-style hooks"):
        ratios = [t / b for t, b in zip(times[variant], bare_times, strict=True)]
        out[variant] = statistics.median(ratios)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--models", default="resnet,encoder,bert")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start"
    )
    print(f"{'model':<10} {'sites':>5} {'bare forward':>13} {'probe':>8} {'fastai-style':>13}")
    for name in args.models.split(","):
        row = bench(name, args.rounds)
        print(
            f"{name:<10} {row['sites']:>5} {row['bare ms']:>10.1f} ms {row['probe']:>7.2f}x "
            f"{row['fastai-style hooks']:>12.2f}x"
        )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end")


if __name__ == "__main__":
    main()
