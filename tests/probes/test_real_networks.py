"""Networks we did not design: every activation is a site, named as docs/probes.md says, with
figures equal to a float64 recomputation from the pre-activations this test captures itself.

The pre-activation of each site is the output of the layer before it (BERT's
``intermediate.dense``, GPT-2's ``mlp.c_fc``, the encoder layer's ``linear1``), read by this
test's own forward hooks; the activation, its slope and every figure are recomputed here in
float64 from the formulas of docs/figures.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import erf
from torch import nn
from torch.nn import functional as F

from variability import Probe, probe_model

TAU = 0.1


def _gelu(z):
    return z * 0.5 * (1.0 + erf(z / math.sqrt(2.0)))


def _gelu_slope(z):
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


_K = math.sqrt(2.0 / math.pi)


def _gelu_tanh(z):
    return 0.5 * z * (1.0 + np.tanh(_K * (z + 0.044715 * z**3)))


def _gelu_tanh_slope(z):
    t = np.tanh(_K * (z + 0.044715 * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _K * (1 + 3 * 0.044715 * z * z)


ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "gelu": (_gelu, _gelu_slope),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_slope),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
}


def reference(z: torch.Tensor, kind: str, unit_axis: int = -1) -> dict:
    """Every figure of one site from its pre-activations, in float64 (docs/figures.md)."""
    phi, slope = ACTIVATIONS[kind]
    units = z.shape[unit_axis]
    zz = z.detach().double().movedim(unit_axis, -1).reshape(-1, units).numpy()
    a = phi(zz)
    peak = np.abs(slope(np.linspace(-12.0, 12.0, 2_400_001))).max()
    active = np.abs(slope(zz)) >= TAU * peak
    unit_ratio = active.mean(axis=0)
    v = math.sqrt(a.var(axis=0).sum() / (a**2).mean(axis=0).sum())
    shift = np.mean(np.abs(zz.mean(axis=0)) / np.sqrt((zz**2).mean(axis=0)))
    status = "collapsed" if v <= 1e-3 else "collapsing" if v <= 0.05 else "healthy"
    return dict(
        units=units,
        samples=zz.shape[0],
        activation_ratio=active.mean(),
        dead_units=int((unit_ratio == 0).sum()),
        variability=v,
        activation_shift=shift,
        status=status,
    )


def assert_site(site, expected: dict) -> None:
    assert site.units == expected["units"]
    assert site.samples == expected["samples"]
    assert site.variability == pytest.approx(expected["variability"], rel=1e-5)
    # a pre-activation within float32 rounding of a slope boundary may fall either way
    assert site.activation_ratio == pytest.approx(
        expected["activation_ratio"], abs=2.0 / (expected["units"] * expected["samples"])
    )
    assert site.dead_units == expected["dead_units"]
    assert site.activation_shift == pytest.approx(expected["activation_shift"], rel=1e-5)
    assert site.status == expected["status"]


class Capture:
    """Keeps the outputs of some modules (this test's own hooks, independent of the probe)."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.kept: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
        self.handles = [
            module.register_forward_hook(self._keep(name)) for name, module in modules.items()
        ]

    def _keep(self, name):
        def hook(module, args, output):
            self.kept[name].append(output.detach().clone())

        return hook

    def __getitem__(self, name: str) -> torch.Tensor:
        return torch.cat(self.kept[name])

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


import transformers  # noqa: E402  (the dev extra installs it, so CI tests it)


def tiny_bert():
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


def token_batches(batches=3, rows=8, length=12, vocab=100, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (rows, length), generator=generator) for _ in range(batches)]


def test_bert_finds_both_gelu_wrappers_and_the_pooler():
    model = tiny_bert()
    layers = model.encoder.layer
    capture = Capture(
        {
            "0": layers[0].intermediate.dense,
            "1": layers[1].intermediate.dense,
            "pooler": model.pooler.dense,
        }
    )
    results = probe_model(model, token_batches())
    capture.close()
    assert results.site_names() == [
        "encoder.layer.0.intermediate.intermediate_act_fn",
        "encoder.layer.1.intermediate.intermediate_act_fn",
        "pooler.activation",
    ]
    assert [s.kind for s in results.sites] == ["gelu", "gelu", "tanh"]
    assert not results.unprobed_calls
    for i in ("0", "1"):
        site = results[f"encoder.layer.{i}.intermediate.intermediate_act_fn"]
        assert_site(site, reference(capture[i], "gelu"))
    assert_site(results["pooler.activation"], reference(capture["pooler"], "tanh"))


def test_gpt2_tanh_gelu_is_one_site_per_layer():
    config = transformers.GPT2Config(
        vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=32, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2Model(config).eval()
    capture = Capture({str(i): model.h[i].mlp.c_fc for i in range(2)})
    results = probe_model(model, token_batches())
    capture.close()
    assert results.site_names() == ["h.0.mlp.act", "h.1.mlp.act"]
    assert not results.unprobed_calls  # the tanh inside NewGELUActivation is that site
    for i in range(2):
        assert_site(results[f"h.{i}.mlp.act"], reference(capture[str(i)], "gelu_tanh"))


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("training", [False, True])
def test_stock_transformer_encoder_layer_with_string_activations(activation, training):
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(32, 4, 48, activation=activation, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    model.train(training)
    x = torch.randn(3, 10, 7, 32, generator=torch.Generator().manual_seed(2))
    capture = Capture({str(i): model.layers[i].linear1 for i in range(2)})
    with Probe(model) as probe, torch.no_grad():
        for batch in x:
            model(batch)
    capture.close()
    results = probe.results()
    assert model.training is training
    assert results.site_names() == [f"layers.0.{activation}", f"layers.1.{activation}"]
    for i in range(2):
        assert_site(results[f"layers.{i}.{activation}"], reference(capture[str(i)], activation))


class TanhThenGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.act, self.second = nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 6)

    def forward(self, x):
        return F.gelu(self.second(self.act(self.first(x))))


def test_activation_module_and_functional_call_in_one_model():
    torch.manual_seed(0)
    model = TanhThenGelu()
    capture = Capture({"first": model.first, "second": model.second})
    results = probe_model(model, torch.randn(300, 3), batch_size=128)
    capture.close()
    assert results.site_names() == ["act", "gelu"]
    assert [s.source for s in results.sites] == ["module", "function"]
    assert_site(results["act"], reference(capture["first"], "tanh"))
    assert_site(results["gelu"], reference(capture["second"], "gelu"))


class GeluWrapper(nn.Module):
    """Like transformers' activation classes: a module whose forward calls F.gelu."""

    def forward(self, x):
        return F.gelu(x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense, self.act_fn = nn.Linear(4, 5), GeluWrapper()

    def forward(self, x):
        return self.act_fn(self.dense(x))


def test_own_wrapper_module_is_one_site_named_by_its_path():
    """Beside an activation module (nn.Tanh), which once stopped the search for calls."""
    torch.manual_seed(0)
    model = nn.Sequential(Block(), nn.Linear(5, 4), nn.Tanh(), Block())
    capture = Capture({"0": model[0].dense, "1": model[1], "3": model[3].dense})
    results = probe_model(model, torch.randn(200, 4), batch_size=64)
    capture.close()
    assert results.site_names() == ["0.act_fn", "2", "3.act_fn"]
    assert_site(results["0.act_fn"], reference(capture["0"], "gelu"))
    assert_site(results["2"], reference(capture["1"], "tanh"))
    assert_site(results["3.act_fn"], reference(capture["3"], "gelu"))


def relu_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def test_compiled_model_is_probed_eagerly_and_says_so():
    model = relu_net()
    compiled = torch.compile(model, backend="eager")
    x = torch.randn(256, 3, generator=torch.Generator().manual_seed(3))
    before = compiled(x)  # compiled once before probing
    capture = Capture({"0": model[0], "2": model[2]})
    results = probe_model(compiled, x, batch_size=64)
    capture.close()
    assert results.site_names() == ["1", "3"]
    assert any("torch.compile" in note and "eagerly" in note for note in results.notes)
    assert_site(results["1"], reference(capture["0"], "relu"))
    assert_site(results["3"], reference(capture["2"], "relu"))
    assert torch.allclose(compiled(x), before)  # and it still runs compiled afterwards
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in compiled.modules())


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 6), nn.Linear(6, 4)

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))))


def test_data_parallel_on_cpu_is_unwrapped():
    torch.manual_seed(0)
    net = FunctionalNet()
    x = torch.randn(120, 3, generator=torch.Generator().manual_seed(4))
    capture = Capture({"a": net.a, "b": net.b})
    results = probe_model(nn.DataParallel(net), x, batch_size=50)
    capture.close()
    assert results.site_names() == ["relu[0]", "relu[1]"]
    assert_site(results["relu[0]"], reference(capture["a"], "relu"))
    assert_site(results["relu[1]"], reference(capture["b"], "relu"))
    assert results.output.units == 4


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_data_parallel_on_two_gpus_matches_one_device():  # pragma: no cover - GPU machines
    torch.manual_seed(0)
    net = FunctionalNet().cuda()
    x = torch.randn(128, 3, generator=torch.Generator().manual_seed(4))
    single = probe_model(net, x.cuda(), batch_size=64)
    parallel = probe_model(nn.DataParallel(net), x.cuda(), batch_size=64)
    assert parallel.site_names() == single.site_names()
    for mine, theirs in zip(parallel.sites, single.sites, strict=True):
        assert mine.variability == pytest.approx(theirs.variability, rel=1e-5)
        assert mine.activation_ratio == theirs.activation_ratio


class ResidualBlock(nn.Module):
    """A torchvision-style basic block: in-place ReLU, ``out += identity``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = ResidualBlock(8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


@pytest.mark.parametrize("channels_last", [False, True])
def test_resnet_style_cnn_with_in_place_relus(channels_last):
    torch.manual_seed(0)
    model = SmallResNet().eval()
    x = torch.randn(24, 3, 10, 10, generator=torch.Generator().manual_seed(5))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    capture = Capture({"stem": model.stem[1], "bn1": model.block.bn1})
    results = probe_model(model, x, batch_size=10)
    capture.close()
    assert results.site_names() == ["stem.2", "block.relu[0]", "block.relu[1]"]
    assert [s.units for s in results.sites] == [8, 8, 8]
    assert_site(results["stem.2"], reference(capture["stem"], "relu", unit_axis=1))
    assert_site(results["block.relu[0]"], reference(capture["bn1"], "relu", unit_axis=1))


def test_batchnorm_head_does_not_turn_sequence_positions_into_units():
    """One BatchNorm1d on (N, F) in the head: the encoder's sites keep their features as units."""
    torch.manual_seed(0)
    d_model, length = 32, 16
    layer = nn.TransformerEncoderLayer(d_model, 4, d_model, activation="gelu", batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.head = nn.Sequential(nn.BatchNorm1d(d_model), nn.Linear(d_model, 3))

        def forward(self, x):
            return self.head(self.encoder(x).mean(dim=1))

    model = Classifier().eval()
    x = torch.randn(40, length, d_model, generator=torch.Generator().manual_seed(6))
    capture = Capture({str(i): encoder.layers[i].linear1 for i in range(2)})
    results = probe_model(model, x, batch_size=16)
    capture.close()
    for i in range(2):
        site = results[f"encoder.layers.{i}.gelu"]
        assert site.units == d_model != length
        assert_site(site, reference(capture[str(i)], "gelu"))
        z = capture[str(i)].double().reshape(-1, d_model).numpy()
        a = _gelu(z)
        correlation = np.abs(np.corrcoef(a, rowvar=False))
        expected = correlation[np.triu_indices(d_model, k=1)].mean()
        assert site.redundancy == pytest.approx(expected, abs=1e-5)
