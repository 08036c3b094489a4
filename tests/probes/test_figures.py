"""The formulas, against values worked out by hand and at each threshold exactly.

Each figure has one implementation in the product (variability/probes/figures.py, vectorised over
the units of many sites end to end) and one reference here (reference_figures.py, one site at a
time, plain). Every hand-worked case checks both; the last test checks the product against the
reference on many random sites at once.
"""

import math

import numpy as np
import pytest
import reference_figures as ref
import torch

from variability.probes import figures
from variability.probes.results import summarise_sites
from variability.probes.statistics import SiteStatistics
from variability.probes.thresholds import Thresholds

ONE_SITE = np.array([0])


def product_v(variance: np.ndarray, mean_square: np.ndarray) -> float:
    """The product's V of one site."""
    sums = figures.per_site(np.stack([variance, mean_square]), ONE_SITE)
    return float(figures.variability(sums[0], sums[1])[0])


def product_constant(variance: np.ndarray, mean_square: np.ndarray, tolerance: float):
    """The product's constant-unit mask of one site whose units were all seen."""
    site_rms = figures.rms(figures.per_site(mean_square, ONE_SITE), [mean_square.size])
    unit_rms = np.repeat(site_rms, mean_square.size)
    return figures.constant_units(np.sqrt(variance), unit_rms, tolerance)


def test_variability_by_hand():
    # Two units: variances 0.6875 and 0.1875, mean squares 1.25 and 0.25 -> sqrt(0.875 / 1.5).
    variance, mean_square = np.array([0.6875, 0.1875]), np.array([1.25, 0.25])
    for v in (ref.variability(variance, mean_square), product_v(variance, mean_square)):
        assert v == pytest.approx(math.sqrt(0.875 / 1.5), rel=1e-12)


def test_variability_is_zero_without_signal_and_one_for_zero_mean():
    for formula in (ref.variability, product_v):
        assert formula(np.zeros(3), np.zeros(3)) == 0.0
        # zero mean: E[a^2] = var, so V = 1
        assert formula(np.array([2.0, 3.0]), np.array([2.0, 3.0])) == pytest.approx(1.0)


def test_unit_moments_from_sums_around_the_reference_value():
    # values 1 and 7 around c = 4: d = -3, 3 -> mean 4, variance 9, E[a^2] = 25; a unit never
    # seen has 0 of each
    seen, mean, variance, mean_square = figures.unit_moments(
        np.array([2.0, 0.0]), np.array([0.0, 0.0]), np.array([18.0, 0.0]), np.array([4.0, 5.0])
    )
    assert seen.tolist() == [True, False]
    assert (mean.tolist(), variance.tolist(), mean_square.tolist()) == (
        [4.0, 0.0],
        [9.0, 0.0],
        [25.0, 0.0],
    )
    assert product_v(variance, mean_square) == 0.6  # sqrt(9 / 25), exactly in float64


def test_activation_ratios_dead_and_linear_units():
    # units active at 2, 1, 4 and 0 of their 4 samples: AR exactly 1 (linear) and exactly 0 (dead)
    active = np.array([2.0, 1.0, 4.0, 0.0])
    count = np.array([4.0, 4.0, 4.0, 4.0])
    for unit in (
        ref.unit_activation_ratio(active, count),
        figures.unit_activation_ratio(active, count),
    ):
        np.testing.assert_array_equal(unit, [0.5, 0.25, 1.0, 0.0])
    unit = figures.unit_activation_ratio(active, count)
    assert figures.dead_units(unit).tolist() == [False, False, False, True]
    assert figures.linear_units(unit).tolist() == [False, False, True, False]
    assert ref.dead_units(unit) == 1 and ref.linear_units(unit) == 1
    # next to the ends: neither dead nor linear
    near = np.array([np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0)])
    assert not figures.dead_units(near).any() and not figures.linear_units(near).any()
    assert ref.dead_units(near) == 0 and ref.linear_units(near) == 0
    assert ref.activation_ratio(active, count) == pytest.approx(7 / 16)
    assert figures.activation_ratio(np.array([7.0, 0.0]), np.array([16.0, 0.0]))[0] == 7 / 16
    assert math.isnan(figures.activation_ratio(np.array([7.0, 0.0]), np.array([16.0, 0.0]))[1])


def test_unit_never_seen_has_no_ratio():
    for unit in (
        ref.unit_activation_ratio(np.array([1.0, 0.0]), np.array([2.0, 0.0])),
        figures.unit_activation_ratio(np.array([1.0, 0.0]), np.array([2.0, 0.0])),
    ):
        assert unit[0] == 0.5 and math.isnan(unit[1])


def test_constant_units_relative_to_site_rms():
    variance = np.array([0.6875, 0.1875, 0.0, 1e-9])
    mean_square = np.array([1.25, 0.25, 0.25, 0.25])
    # RMS = sqrt(1.75 / 4) = 0.6614; tolerance 1e-3 -> std <= 6.6e-4 is constant (sqrt(1e-9)=3e-5)
    for mask in (
        ref.constant_units(variance, mean_square, 1e-3),
        product_constant(variance, mean_square, 1e-3),
    ):
        assert mask.tolist() == [False, False, True, True]


def test_a_unit_whose_std_is_exactly_the_tolerance_is_constant():
    # unit 0 is 1 and 1 (std 0, E[a^2] 1), unit 1 is -1 and 1 (std 1, E[a^2] 1): RMS
    # sqrt((1 + 1) / 2) = 1, so with tolerance 1 unit 1's std equals tolerance * RMS exactly
    variance, mean_square = np.array([0.0, 1.0]), np.array([1.0, 1.0])
    for mask in (
        ref.constant_units(variance, mean_square, 1.0),
        product_constant(variance, mean_square, 1.0),
    ):
        assert mask.tolist() == [True, True]
    below = np.nextafter(1.0, 0.0)
    for mask in (
        ref.constant_units(variance, mean_square, below),
        product_constant(variance, mean_square, below),
    ):
        assert mask.tolist() == [True, False]


def test_an_all_zero_site_has_every_unit_constant_and_v_zero():
    # every value 0: std 0 and RMS 0, and 0 <= tolerance * 0
    zeros = np.zeros(3)
    for mask in (ref.constant_units(zeros, zeros, 1e-3), product_constant(zeros, zeros, 1e-3)):
        assert mask.tolist() == [True, True, True]
    assert ref.variability(zeros, zeros) == 0.0 and product_v(zeros, zeros) == 0.0
    assert figures.rms(0.0, 3.0) == 0.0 and ref.rms(0.0, 3.0) == 0.0


def test_activation_shift_by_hand():
    mean = np.array([0.5, -0.5, 0.5, -1.0, 0.0])
    mean_square = np.array([1.5, 1.5, 0.25, 1.0, 0.0])
    expected_units = [0.5 / math.sqrt(1.5), 0.5 / math.sqrt(1.5), 1.0, 1.0, 0.0]
    np.testing.assert_allclose(figures.unit_activation_shift(mean, mean_square), expected_units)
    assert ref.activation_shift(mean, mean_square) == pytest.approx(
        sum(expected_units) / 5, rel=1e-12
    )


def test_redundancy_by_hand_and_with_excluded_units():
    x = np.array([[0.0, 1.0, 5.0], [0.0, 0.0, 5.0], [1.0, 0.0, 5.0], [2.0, 0.0, 5.0]])
    cov = np.cov(x.T, bias=True)
    keep = np.array([True, True, False])
    expected = abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1])
    for r in (ref.redundancy(cov, keep), figures.redundancy(cov, keep)):
        assert r == pytest.approx(expected, rel=1e-12)
        assert r == pytest.approx(0.5222329678670935, rel=1e-9)
    assert math.isnan(figures.redundancy(cov, np.array([True, False, False])))


def test_rms():
    assert ref.rms(8.0, 2.0) == 2.0 and figures.rms(8.0, 2.0) == 2.0
    assert math.isnan(ref.rms(0.0, 0.0)) and math.isnan(figures.rms(0.0, 0.0))
    np.testing.assert_array_equal(
        figures.rms(np.array([8.0, 0.0]), np.array([2.0, 0.0])), [2, np.nan]
    )


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        (0.0, "collapsed"),
        (1e-3, "collapsed"),  # exactly the collapse level
        (np.nextafter(1e-3, 1.0), "collapsing"),
        (0.05, "collapsing"),  # exactly the collapsing level
        (np.nextafter(0.05, 1.0), "healthy"),
        (1.0, "healthy"),
    ],
)
def test_status_at_each_level(v, expected):
    assert Thresholds().status(float(v)) == expected
    assert ref.status(float(v)) == expected


def test_results_of_many_sites_equal_the_formulas_site_by_site():
    # results.py computes the figures of all sites at once with figures.py; reference_figures.py
    # states them one site at a time. Sites of different widths, units never seen, dead, linear
    # and constant units, an all-zero site, a unit exactly at the constant tolerance and a site
    # whose V is exactly a collapse level.
    rng = np.random.default_rng(4)
    thresholds = Thresholds(collapsed=0.6, collapsing=0.8, constant=1.0)
    sources, expected = [], []

    def add(stats, want):
        sources.append((f"s{len(sources)}", "relu", "module", len(sources), stats))
        expected.append(want)

    for i, units in enumerate([3, 7, 1, 12, 5]):
        stats = SiteStatistics(units, preactivation=i != 2, cross_index=None)
        count = rng.integers(0, 40, units).astype(float)
        count[0] = 30.0  # every site has a unit seen
        if units > 2:
            count[-1] = 0.0  # and the wider ones a unit never seen
        mean = rng.normal(size=units) * 3
        variance = rng.uniform(0, 2, units) * (rng.uniform(size=units) > 0.3)  # some constant
        shift = rng.normal(size=units)
        set_output(stats, count, mean, variance, shift)
        want = {}
        seen = count > 0
        msq = variance + mean**2
        want["variability"] = ref.variability(variance[seen], msq[seen])
        want["constant_units"] = int(ref.constant_units(variance[seen], msq[seen], 1.0).sum())
        want["rms"] = ref.rms(float(msq[seen].sum()), float(seen.sum()))
        want["status"] = ref.status(want["variability"], 0.6, 0.8)
        if stats.has_preactivation:
            z_count = count.copy()
            active = np.floor(z_count * rng.choice([0.0, 0.4, 1.0], units))
            z_mean, z_msq = rng.normal(size=units), rng.uniform(0, 3, units)
            stats.z_count = torch.tensor(z_count)
            stats.moments[2] = torch.tensor(active)
            stats.moments[3] = torch.tensor(z_count * z_mean)
            stats.moments[4] = torch.tensor(z_count * z_msq)
            ratio = ref.unit_activation_ratio(active, z_count)
            z_seen = z_count > 0
            want["activation_ratio"] = ref.activation_ratio(active, z_count)
            want["dead_units"] = ref.dead_units(ratio[z_seen])
            want["linear_units"] = ref.linear_units(ratio[z_seen])
            want["activation_shift"] = ref.activation_shift(z_mean[z_seen], z_msq[z_seen])
        add(stats, want)
    # every value 0 (a dead ReLU site): V 0, collapsed, every unit constant
    stats = SiteStatistics(4, preactivation=False, cross_index=None)
    set_output(stats, np.full(4, 10.0), np.zeros(4), np.zeros(4), np.zeros(4))
    add(stats, dict(variability=0.0, status="collapsed", constant_units=4, rms=0.0))
    # one unit, values 1 and 7: mean 4, variance 9, E[a^2] 25, so V = 0.6, exactly the
    # collapse level (its std 3 is below 1.0 * RMS = 5: constant at this loose tolerance)
    stats = SiteStatistics(1, preactivation=False, cross_index=None)
    set_output(stats, np.array([2.0]), np.array([4.0]), np.array([9.0]), np.array([4.0]))
    add(stats, dict(variability=0.6, status="collapsed", constant_units=1, rms=5.0))
    # units 1, 1 and -1, 1: RMS 1, so the second unit's std (1) is exactly 1.0 * RMS: constant
    stats = SiteStatistics(2, preactivation=False, cross_index=None)
    set_output(stats, np.array([2.0, 2.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.ones(2))
    add(stats, dict(constant_units=2, rms=1.0))
    for got, want in zip(summarise_sites(sources, thresholds), expected, strict=True):
        for name, value in want.items():
            if isinstance(value, str):
                assert getattr(got, name) == value, (got.name, name)
            else:
                assert getattr(got, name) == pytest.approx(value, rel=1e-12, abs=1e-15), name


def set_output(stats, count, mean, variance, reference):
    """Fill a site's output sums from per-unit counts, means and variances around ``reference``."""
    d = mean - reference
    stats.shift = torch.tensor(reference, dtype=torch.float64)
    stats.count = torch.tensor(count)
    stats.moments[0] = torch.tensor(count * d)
    stats.moments[1] = torch.tensor(count * (variance + d * d))
    stats.initialised = True
