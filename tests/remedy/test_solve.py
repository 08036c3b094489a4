"""The per-unit solutions of remedy/solve.py, checked against figures computed here."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch

from variability.remedy.solve import (
    constant_units,
    gaussian_solution,
    quantile_solution,
    split_points,
)


def test_split_point_is_the_midpoint_around_the_split():
    values = torch.tensor([[4.0, 0.0], [1.0, 10.0], [3.0, 20.0], [2.0, 30.0]], dtype=torch.float64)
    # half above: between the 2nd and 3rd smallest; a quarter above: between the 3rd and 4th
    assert split_points(values, 0.5).tolist() == [2.5, 15.0]
    assert split_points(values, 0.25).tolist() == [3.5, 25.0]


def test_split_point_moves_to_the_nearer_end_of_a_tie():
    # 10 samples, 4 of them tied at 1.0 around the median: splitting below the tie leaves 6 of
    # 10 above (0.6), above it 2 of 10 (0.2); 0.6 is the nearer to one half
    column = torch.tensor([0.0, 0.5, 0.7, 0.8, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    values = torch.stack([column, torch.arange(10, dtype=torch.float64)], dim=1)
    q = split_points(values, 0.5)
    assert q.tolist() == [0.9, 4.5]
    assert (values > q).double().mean(dim=0).tolist() == [0.6, 0.5]
    assert split_points(values, 0.25)[0].item() == 1.5  # nearer the top of the tie: 2 above


def test_direct_solution_hits_both_targets_exactly_on_the_samples():
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(1000, 5, generator=generator, dtype=torch.float64) * torch.tensor(
        [0.01, 0.1, 1.0, 10.0, 3.0], dtype=torch.float64
    ) + torch.tensor([5.0, -1.0, 0.0, 2.0, 100.0], dtype=torch.float64)
    for target, above in ((1.0, 0.5), (2.0, 0.3)):
        solution = quantile_solution(u, None, target, above)
        z = solution.alpha * u + solution.beta
        assert bool(solution.reachable.all())
        assert torch.allclose(z.square().mean(dim=0), torch.full((5,), target, dtype=z.dtype))
        assert (z > 0).double().mean(dim=0).tolist() == [above] * 5


def test_without_bias_only_the_second_moment_is_set():
    u = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    solution = quantile_solution(u, None, 1.0, 0.5, shift=False)
    assert solution.beta.tolist() == [0.0]
    assert solution.alpha.item() == pytest.approx(math.sqrt(3 / 14))  # mean(u^2) = 14/3


def test_residual_solution_accounts_for_the_other_path():
    generator = torch.Generator().manual_seed(1)
    u = torch.randn(4000, 3, generator=generator, dtype=torch.float64) * 0.01
    r = torch.relu(torch.randn(4000, 3, generator=generator, dtype=torch.float64)) * 0.6
    solution = quantile_solution(u, r, 1.0, 0.5)
    z = solution.alpha * u + solution.beta + r
    assert bool(solution.reachable.all())
    assert torch.allclose(z.square().mean(dim=0), torch.ones(3, dtype=z.dtype), rtol=1e-6)
    assert ((z > 0).double().mean(dim=0) - 0.5).abs().max() <= 1 / 4000


def test_constant_units_and_overwhelming_other_paths_are_unreachable():
    generator = torch.Generator().manual_seed(2)
    u = torch.randn(500, 3, generator=generator, dtype=torch.float64)
    u[:, 1] = 0.7  # the same for every input: dead on every input
    assert constant_units(u).tolist() == [False, True, False]
    solution = quantile_solution(u, None, 1.0, 0.5)
    assert solution.reachable.tolist() == [True, False, True]
    assert solution.alpha[1].item() == 1.0 and solution.beta[1].item() == 0.0
    r = torch.randn(500, 3, generator=generator, dtype=torch.float64) * 10.0  # alone 100x target
    assert not bool(quantile_solution(u, r, 1.0, 0.5).reachable.any())


def test_gaussian_solution_by_hand():
    mean = torch.tensor([2.0, -1.0], dtype=torch.float64)
    variance = torch.tensor([4.0, 0.25], dtype=torch.float64)
    solution = gaussian_solution(mean, variance, 1.0, 0.5)
    assert solution.alpha.tolist() == pytest.approx([0.5, 2.0])
    assert solution.beta.tolist() == pytest.approx([-1.0, 2.0])
    # a quarter above 0: z ~ N(g s, s^2), P(z > 0) = Phi(g) = 0.25 with s^2 (1 + g^2) = 1
    g = NormalDist().inv_cdf(0.25)
    s = 1 / math.sqrt(1 + g * g)
    solution = gaussian_solution(mean, variance, 1.0, 0.25)
    z_mean = solution.alpha * mean + solution.beta
    z_std = solution.alpha * variance.sqrt()
    assert z_std.tolist() == pytest.approx([s, s])
    pairs = zip(z_mean.tolist(), z_std.tolist(), strict=True)
    assert [NormalDist(m, sd).cdf(0.0) for m, sd in pairs] == pytest.approx([0.75, 0.75])


def test_gaussian_solution_with_another_path_solves_the_quadratic():
    # z = alpha u + beta + r, var = alpha^2 var_u + 2 alpha cov + var_r = 1
    solution = gaussian_solution(
        torch.tensor([0.0], dtype=torch.float64),
        torch.tensor([1.0], dtype=torch.float64),
        1.0,
        0.5,
        other_mean=torch.tensor([3.0], dtype=torch.float64),
        other_variance=torch.tensor([0.36], dtype=torch.float64),
        covariance=torch.tensor([0.0], dtype=torch.float64),
    )
    assert solution.alpha.item() == pytest.approx(0.8)
    assert solution.beta.item() == pytest.approx(-3.0)
    unreachable = gaussian_solution(
        torch.tensor([0.0], dtype=torch.float64),
        torch.tensor([1.0], dtype=torch.float64),
        1.0,
        0.5,
        other_mean=torch.tensor([0.0], dtype=torch.float64),
        other_variance=torch.tensor([4.0], dtype=torch.float64),
        covariance=torch.tensor([0.0], dtype=torch.float64),
    )
    assert unreachable.reachable.tolist() == [False]
