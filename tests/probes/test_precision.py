"""Tiny variances on top of large means keep their precision (docs/figures.md, "Exactness").

Collapse is judged at V <= 1e-3, that is var / E[a^2] <= 1e-6: a float32 sum of squares around
zero would lose the variance entirely. The reference figures are computed here in float64, by
two passes over the very float32 values the probe saw.
"""

import numpy as np
import pytest
import torch
from torch import nn

from variability import Probe

# Each test runs with the compiled kernel and with PyTorch's reductions (conftest.reduction).
pytestmark = pytest.mark.usefixtures("reduction")

MEANS = torch.tensor([1e3, 1e3, 250.0, 3e3, 1.0, 1e3])
STDS = torch.tensor([1e-3, 2e-3, 1e-4, 5e-3, 1e-6, 0.0])


def near_constant(batches: int, rows: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batches * rows, len(MEANS), generator=generator, dtype=torch.float64)
    return (MEANS + STDS * noise).float()


def reference_v(x: torch.Tensor) -> float:
    a = x.double().numpy()
    variance = ((a - a.mean(0)) ** 2).mean(0)
    return float(np.sqrt(variance.sum() / (a**2).mean(0).sum()))


@pytest.mark.parametrize("redundancy", [False, True])
@pytest.mark.parametrize("batch", [7, 128, 5000])
def test_variance_is_precise_relative_to_itself(redundancy, batch):
    x = near_constant(40, 125)
    model = nn.Sequential(nn.ReLU())  # every value is positive: the site's output is x itself
    with Probe(model, redundancy=redundancy) as probe, torch.no_grad():
        for chunk in x.split(batch):
            model(chunk)
    results = probe.results()
    expected = reference_v(x)
    assert 1e-7 < expected < 1e-5  # collapsed, far below float32 resolution of E[a^2]
    for site in (results["0"], results.output):
        assert site.variability == pytest.approx(expected, rel=1e-5)
        assert site.status == "collapsed"
        assert site.constant_units == len(MEANS)


@pytest.mark.parametrize("batch", [333, 100])  # 13 batches; 40, past two float64 folds
def test_correlations_of_units_with_large_means(batch):
    generator = torch.Generator().manual_seed(1)
    u, v, w = torch.randn(3, 4000, generator=generator, dtype=torch.float64)
    columns = [1e3 + 2 * u, 1e3 + u + v, 500 + 3 * w, 2e3 + 1.5 * (u - w)]
    x = torch.stack(columns, dim=1).float()
    model = nn.Sequential(nn.ReLU())
    with Probe(model) as probe, torch.no_grad():
        for chunk in x.split(batch):
            model(chunk)
    site = probe.results()["0"]
    corr = np.corrcoef(x.double().numpy(), rowvar=False)
    expected = np.abs(corr[np.triu_indices(4, 1)]).mean()
    assert site.redundancy_units == 4
    assert site.redundancy == pytest.approx(expected, abs=1e-5)


def test_the_fallback_moments_give_the_same_figures(monkeypatch):
    # Devices without PyTorch's batch-norm statistics kernel take torch.var_mean instead.
    from variability.probes import statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(300, 3)

    def figures():
        with Probe(model) as probe, torch.no_grad():
            for chunk in x.split(64):
                model(chunk)
        return probe.results()

    fast = figures()
    monkeypatch.setattr(statistics, "_BATCH_NORM_STATS", None)
    fallback = figures()
    for one, other in zip(fast.all_sites(), fallback.all_sites(), strict=True):
        assert one.variability > 0.1  # healthy sites: the comparison below means something
        for name in ("variability", "activation_ratio", "activation_shift", "redundancy", "rms"):
            expected = getattr(one, name)
            if expected is None:
                assert getattr(other, name) is None
            else:
                assert getattr(other, name) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def redundancy_bound(samples: int) -> float:
    """docs/figures.md: a correlation carries about 6e-8 * sqrt(M) absolute error."""
    return 6e-8 * np.sqrt(samples)


def reference_redundancy(a: np.ndarray, constant: float = 1e-3) -> float:
    rms = np.sqrt((a**2).mean(0).mean())
    keep = a.std(0) > constant * rms
    correlation = np.abs(np.corrcoef(a[:, keep], rowvar=False))
    return float(correlation[np.triu_indices(int(keep.sum()), k=1)].mean())


@pytest.mark.parametrize("batch", [100, 1024, 4096])
def test_correlated_units_far_from_their_first_value_meet_the_redundancy_bound(batch):
    """Two perfectly correlated ReLU units, off (0) at the first sample and near 10 at every
    other: the cross products around the first value are 1e7 times the covariance. Taken
    around that value in float32, the redundancy was 1.3e-4 below 1 (these data put the error
    below 1, where the clipping of correlations to [0, 1] cannot hide it); the bound is 3.8e-6.
    """
    t = torch.rand(4096, generator=torch.Generator().manual_seed(0))
    first = 10 + 0.01 * t
    first[0] = 0.0
    second = 3 * first + 1
    second[0] = 0.0
    z = torch.stack([first, second], 1)
    with Probe(nn.Sequential(nn.ReLU())) as probe, torch.no_grad():
        for part in z.split(batch):
            probe.model(part)
    site = probe.results()["0"]
    expected = reference_redundancy(z.double().numpy())
    assert expected > 0.99999
    assert abs(site.redundancy - expected) <= redundancy_bound(4096)


def test_deep_narrow_relu_net_meets_the_redundancy_bound_at_every_site():
    from variability import build_model

    worst = 0.0
    for seed in range(3):
        model = build_model("fc", d_in=2, d_out=1, depth=64, width=6, seed=seed)
        x = torch.rand(4096, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        outputs: dict[str, list[torch.Tensor]] = {}
        modules = dict(model.named_modules())

        def keep(name, kept=outputs):
            return lambda m, i, o: kept.setdefault(name, []).append(o.double())

        with Probe(model) as probe, torch.no_grad():
            hooks = [
                modules[name].register_forward_hook(keep(name))
                for name in modules
                if isinstance(modules[name], nn.ReLU)
            ]
            for part in x.split(1024):
                model(part)
            for hook in hooks:
                hook.remove()
        for site in probe.results().sites:
            if site.redundancy is None or site.redundancy_units < 2:
                continue
            expected = reference_redundancy(torch.cat(outputs[site.name]).numpy())
            worst = max(worst, abs(site.redundancy - expected))
    assert 0.0 < worst <= redundancy_bound(4096)
