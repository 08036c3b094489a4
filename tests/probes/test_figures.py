"""The pure formulas, against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from variability.probes import figures


def test_variability_by_hand():
    # Two units: variances 0.6875 and 0.1875, mean squares 1.25 and 0.25 -> sqrt(0.875 / 1.5).
    v = figures.variability(np.array([0.6875, 0.1875]), np.array([1.25, 0.25]))
    assert v == pytest.approx(math.sqrt(0.875 / 1.5), rel=1e-12)


def test_variability_is_zero_without_signal_and_one_for_zero_mean():
    assert figures.variability(np.zeros(3), np.zeros(3)) == 0.0
    # zero mean: E[a^2] = var, so V = 1
    assert figures.variability(np.array([2.0, 3.0]), np.array([2.0, 3.0])) == pytest.approx(1.0)


def test_activation_ratios_dead_and_linear_units():
    active = np.array([2.0, 1.0, 4.0, 0.0])
    count = np.array([4.0, 4.0, 4.0, 4.0])
    unit = figures.unit_activation_ratio(active, count)
    np.testing.assert_allclose(unit, [0.5, 0.25, 1.0, 0.0])
    assert figures.activation_ratio(active, count) == pytest.approx(7 / 16)
    assert figures.dead_units(unit) == 1
    assert figures.linear_units(unit) == 1


def test_unit_never_seen_has_no_ratio():
    unit = figures.unit_activation_ratio(np.array([1.0, 0.0]), np.array([2.0, 0.0]))
    assert unit[0] == 0.5 and math.isnan(unit[1])


def test_constant_units_relative_to_site_rms():
    variance = np.array([0.6875, 0.1875, 0.0, 1e-9])
    mean_square = np.array([1.25, 0.25, 0.25, 0.25])
    # RMS = sqrt(1.75 / 4) = 0.6614; tolerance 1e-3 -> std <= 6.6e-4 is constant (sqrt(1e-9)=3e-5)
    mask = figures.constant_units(variance, mean_square, 1e-3)
    assert mask.tolist() == [False, False, True, True]
    # a site whose every value is 0 has RMS 0: every unit is constant
    assert figures.constant_units(np.zeros(2), np.zeros(2), 1e-3).all()


def test_activation_shift_by_hand():
    mean = np.array([0.5, -0.5, 0.5, -1.0, 0.0])
    mean_square = np.array([1.5, 1.5, 0.25, 1.0, 0.0])
    expected = (0.5 / math.sqrt(1.5) * 2 + 1.0 + 1.0 + 0.0) / 5
    assert figures.activation_shift(mean, mean_square) == pytest.approx(expected, rel=1e-12)


def test_redundancy_by_hand_and_with_excluded_units():
    x = np.array([[0.0, 1.0, 5.0], [0.0, 0.0, 5.0], [1.0, 0.0, 5.0], [2.0, 0.0, 5.0]])
    cov = np.cov(x.T, bias=True)
    keep = np.array([True, True, False])
    r = figures.redundancy(cov, keep)
    expected = abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1])
    assert r == pytest.approx(expected, rel=1e-12)
    assert r == pytest.approx(0.5222329678670935, rel=1e-9)
    assert math.isnan(figures.redundancy(cov, np.array([True, False, False])))


def test_rms():
    assert figures.rms(8.0, 2.0) == 2.0
    assert math.isnan(figures.rms(0.0, 0.0))


def test_results_of_many_sites_equal_the_formulas_site_by_site():
    # results.py computes the figures of all sites at once; figures.py states them one site at a
    # time. Sites of different widths, units never seen, dead, linear and constant units.
    from variability.probes.results import summarise_sites
    from variability.probes.statistics import SiteStatistics
    from variability.probes.thresholds import Thresholds

    rng = np.random.default_rng(4)
    thresholds = Thresholds()
    sources, expected = [], []
    for i, units in enumerate([3, 7, 1, 12, 5]):
        stats = SiteStatistics(units, preactivation=i != 2, cross_index=None)
        count = rng.integers(0, 40, units).astype(float)
        count[0] = 30.0  # every site has a unit seen
        if units > 2:
            count[-1] = 0.0  # and the wider ones a unit never seen
        mean = rng.normal(size=units) * 3
        variance = rng.uniform(0, 2, units) * (rng.uniform(size=units) > 0.3)  # some constant
        shift = rng.normal(size=units)
        d = mean - shift
        stats.shift = torch.tensor(shift)
        stats.count = torch.tensor(count)
        stats.moments[0] = torch.tensor(count * d)
        stats.moments[1] = torch.tensor(count * (variance + d * d))
        stats.initialised = True
        want = {}
        seen = count > 0
        msq = variance + mean**2
        want["variability"] = figures.variability(variance[seen], msq[seen])
        want["constant_units"] = int(figures.constant_units(variance[seen], msq[seen], 1e-3).sum())
        if stats.has_preactivation:
            z_count = count.copy()
            active = np.floor(z_count * rng.choice([0.0, 0.4, 1.0], units))
            z_mean, z_msq = rng.normal(size=units), rng.uniform(0, 3, units)
            stats.z_count = torch.tensor(z_count)
            stats.moments[2] = torch.tensor(active)
            stats.moments[3] = torch.tensor(z_count * z_mean)
            stats.moments[4] = torch.tensor(z_count * z_msq)
            ratio = figures.unit_activation_ratio(active, z_count)
            z_seen = z_count > 0
            want["activation_ratio"] = figures.activation_ratio(active, z_count)
            want["dead_units"] = figures.dead_units(ratio[z_seen])
            want["linear_units"] = figures.linear_units(ratio[z_seen])
            want["activation_shift"] = figures.activation_shift(z_mean[z_seen], z_msq[z_seen])
        sources.append((f"s{i}", "relu", "module", i, stats))
        expected.append(want)
    for got, want in zip(summarise_sites(sources, thresholds), expected, strict=True):
        for name, value in want.items():
            assert getattr(got, name) == pytest.approx(value, rel=1e-12, abs=1e-15), name
