"""The compiled one-pass kernel (probes/kernels.py) against float64 sums and the PyTorch path."""

import numpy as np
import pytest
import torch
from torch import nn

from variability import Probe
from variability.probes import kernels
from variability.probes.layout import layout_of


@pytest.fixture(autouse=True)
def compiled_kernels(monkeypatch):
    """On, whatever VARIABILITY_KERNELS says; numba is a dependency, so it must import."""
    assert kernels.compiled() is not None, "numba does not import: it is a dependency"
    monkeypatch.setattr(kernels, "ENABLED", True)


def float64_sums(a: torch.Tensor, z: torch.Tensor | None, shift: torch.Tensor, unit_axis: int):
    """The kernel's five rows, from their definitions, in float64."""
    axes = tuple(i for i in range(a.dim()) if i != unit_axis)
    shape = [1] * a.dim()
    shape[unit_axis] = -1
    d = a.double() - shift.double().view(shape)
    rows = [d.sum(axes), (d * d).sum(axes), (a != 0).double().sum(axes)]
    if z is not None:
        rows += [z.double().sum(axes), (z.double() ** 2).sum(axes)]
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("shape", "unit_axis"),
    [((1000, 37), 1), ((3, 130, 7), 2), ((5, 6, 4, 9), 1), ((4, 3, 11), 1), ((1, 5), 1)],
)
@pytest.mark.parametrize("with_z", [True, False])
def test_kernel_sums_equal_float64_sums(dtype, shape, unit_axis, with_z):
    generator = torch.Generator().manual_seed(sum(shape))
    z = (3.0 + 2.0 * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)
    a = torch.relu(z - 3.0)  # a quarter or so of the values are exactly 0
    layout = layout_of(a, unit_axis)
    assert kernels.fits(a, layout, z if with_z else None)
    shift = layout.first_sample(a).contiguous()
    out = np.full((kernels.ROWS, layout.units), np.nan)
    assert kernels.reduce_batch(a, z if with_z else None, shift, layout, out)
    expected = float64_sums(a, z if with_z else None, shift, unit_axis)
    rows = expected.shape[0]
    # Errors relative to the largest sum of each kind: a few roundings of the data's precision.
    scale = np.abs(expected).max(axis=1, keepdims=True) + 1e-300
    tolerance = 1e-6 if dtype == torch.float32 else 1e-13
    assert np.abs(out[:rows] - expected).max(axis=1).max() <= tolerance * scale.max()
    assert np.array_equal(out[2], expected[2])  # the count is exact


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_kernel_reports_a_batch_with_nan_or_inf(bad):
    a = torch.rand(200, 8)
    a[150, 3] = bad
    layout = layout_of(a)
    out = np.zeros((kernels.ROWS, 8))
    assert not kernels.reduce_batch(a, None, torch.zeros(8), layout, out)
    z = torch.rand(200, 8)
    z[7, 0] = bad
    assert not kernels.reduce_batch(torch.rand(200, 8), z, torch.zeros(8), layout, out)


def test_what_the_kernel_cannot_read_in_place_goes_to_pytorch():
    a = torch.rand(64, 10)
    layout = layout_of(a)
    assert kernels.fits(a, layout)
    assert not kernels.fits(a.T.contiguous().T, layout)  # units not contiguous
    assert not kernels.fits(a.half(), layout)
    assert not kernels.fits(a, layout, a.double())  # z of another precision
    conv = torch.rand(2, 3, 4, 5)
    assert kernels.fits(conv, layout_of(conv))
    channels_last = conv.to(memory_format=torch.channels_last)
    assert not kernels.fits(channels_last, layout_of(channels_last))
    sequence = torch.rand(2, 7, 3)  # (N, T, F): units last
    assert kernels.fits(sequence, layout_of(sequence))
    assert kernels.fits(sequence, layout_of(sequence, 1))  # (N, C, L): channels


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 5, 3)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        return self.head(self.act(self.conv(x)).mean((2, 3)))


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 9)
        self.b = nn.Linear(9, 2)

    def forward(self, x):
        return self.b(torch.sigmoid(self.a(x)))


def _models_and_inputs():
    torch.manual_seed(3)
    mlp = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 8),
        nn.ReLU(inplace=True), nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 3),
    )  # fmt: skip
    sequence = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    return [
        ("mlp", mlp, torch.randn(700, 4)),
        ("conv", _Conv(), torch.randn(30, 2, 8, 8)),
        ("functional", _Functional(), torch.randn(500, 4)),
        ("sequence", sequence, torch.randn(40, 9, 5)),
    ]


def _figures(model, x, redundancy):
    with Probe(model, redundancy=redundancy) as probe, torch.no_grad():
        for chunk in x.split(97):
            model(chunk)
    return probe.results()


@pytest.mark.parametrize("redundancy", [False, True])
@pytest.mark.parametrize("nan", [False, True])
def test_every_figure_is_the_same_with_and_without_the_kernel(monkeypatch, redundancy, nan):
    for name, model, x in _models_and_inputs():
        if nan:
            x = x.clone()
            x.view(-1)[:: max(1, x.numel() // 7)] = float("nan")
        compiled = _figures(model, x, redundancy)
        monkeypatch.setattr(kernels, "ENABLED", False)
        plain = _figures(model, x, redundancy)
        monkeypatch.setattr(kernels, "ENABLED", True)
        one, other = compiled.to_dict(), plain.to_dict()
        assert len(one["sites"]) == len(other["sites"]) >= 1, name
        if nan:
            assert any(site["nonfinite"] > 0 for site in one["sites"]), name
        _assert_close(one, other, name)


def _assert_close(one, other, where):
    if isinstance(one, dict):
        assert one.keys() == other.keys(), where
        for key in one:
            _assert_close(one[key], other[key], f"{where}.{key}")
    elif isinstance(one, list):
        assert len(one) == len(other), where
        for i, (x, y) in enumerate(zip(one, other, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(one, float) and isinstance(other, float):
        assert other == pytest.approx(one, rel=1e-5, abs=1e-6, nan_ok=True), where
    else:
        assert one == other, where


INTERVAL_RULES = [
    nn.GELU(),
    nn.GELU(approximate="tanh"),
    nn.SiLU(),
    nn.Mish(),
    nn.ELU(alpha=2.0),
    nn.Hardswish(),  # three intervals
    nn.Hardtanh(-1.0, 1.0),  # open ends at values a float holds exactly
    nn.LeakyReLU(0.01),  # z > 0: the open end at 0
    nn.Sigmoid(),
    nn.Softplus(beta=2.0),
]


@pytest.mark.parametrize("module", INTERVAL_RULES, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5])
def test_kernel_counts_active_values_as_the_rule_does(module, dtype, tau):
    """The kernel's interval test counts exactly the values the activation's rule (PyTorch)
    calls active, bounds included: z holds every interval end and its float neighbours."""
    from variability.probes.activations import activation_for_module
    from variability.probes.intervals import exact_bounds

    activation = activation_for_module(module)
    bounds = exact_bounds(activation.intervals(tau), dtype)
    assert kernels.fits_intervals(bounds)
    ends = torch.tensor(
        [v for v in bounds.ravel().tolist() if np.isfinite(v)] + [0.0, -3.0, 3.0, 1.0, -1.0],
        dtype=dtype,
    )
    up = torch.nextafter(ends, torch.full_like(ends, np.inf))
    down = torch.nextafter(ends, torch.full_like(ends, -np.inf))
    spread = torch.randn(4000, generator=torch.Generator().manual_seed(0), dtype=dtype) * 4
    z = torch.cat([ends, up, down, spread]).reshape(-1, 1).repeat(1, 3)
    a = module(z)
    layout = layout_of(a)
    out = np.zeros((kernels.ROWS, 3))
    assert kernels.reduce_batch(a, z, torch.zeros(3, dtype=dtype), layout, out, bounds)
    expected = activation.active(z, tau).sum(0).double().numpy()
    assert np.array_equal(out[kernels.NONZERO], expected)
