"""Parameter counts against the formulas of DEFINITIONS.md, and the equal-parameter solver."""

from __future__ import annotations

import pytest

from variability.arch import (
    FAMILIES,
    BudgetError,
    SpecError,
    build_model,
    count_params,
    min_width,
    param_count,
    solve_width,
    solve_widths,
)

CONFIGS = [
    # (d_in, d_out, depth, width)
    (2, 1, 1, 1),
    (2, 1, 6, 100),
    (2, 2, 20, 30),
    (64, 10, 3, 17),
    (10, 1, 8, 5),
    (30, 2, 2, 64),
]


def definitions_formula(family, d_in, d_out, depth, w):
    """DEFINITIONS.md, written out independently of the package."""
    if family == "fc":
        return (d_in + 1) * w + (depth - 1) * (w**2 + w) + (w + 1) * d_out
    if family == "lcw":
        return (d_in + 1) * w + (depth - 1) * (w * (w - 1) + w) + (w + 1) * d_out
    return (d_in + 1) * w + 2 * w * (depth - 1) + (w + 1) * d_out


def test_hand_computed_counts():
    # FC 6 x 100 on 2-D input: 300 + 5 * 10,100 + 101.
    assert param_count("fc", 2, 1, 6, 100) == 50_901
    # With two outputs it is the 51,002 the Han paper quotes for its FCNet.
    assert param_count("fc", 2, 2, 6, 100) == 51_002
    # Han 20 x 30: 90 + 2 * 30 * 19 + 31.
    assert param_count("han", 2, 1, 20, 30) == 1_261
    # LCW 4 x 16: 48 + 3 * 256 + 17.
    assert param_count("lcw", 2, 1, 4, 16) == 833


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("d_in,d_out,depth,width", CONFIGS)
def test_built_models_match_the_formulas(family, d_in, d_out, depth, width):
    model = build_model(family, d_in, d_out, depth, width=width, seed=0)
    expected = definitions_formula(family, d_in, d_out, depth, width)
    assert count_params(model) == expected
    assert param_count(family, d_in, d_out, depth, width) == expected


def test_count_params_ignores_frozen_parameters_and_buffers():
    model = build_model("lcw", 2, 1, 3, width=8, seed=0)
    total = count_params(model)
    model.linear1.weight.requires_grad_(False)
    assert count_params(model) == total - 16
    assert sum(b.numel() for b in model.buffers()) > 0  # LCW bases exist but are not counted


def nearest_by_search(family, budget, depth, d_in, d_out, tolerance=0.05, at_most=False):
    """DEFINITIONS.md's rule by brute force: the width whose count is nearest to the budget
    (ties to the narrower), None unless within the tolerance; at_most: largest within budget."""
    low = 2 if family == "lcw" and depth >= 2 else 1
    best = None
    for width in range(low, 10**7):  # stops once counts are far above the budget
        count = definitions_formula(family, d_in, d_out, depth, width)
        if at_most and count > budget:
            break
        gap = abs(count - budget)
        if best is None or gap < best[0] or (at_most and gap <= best[0]):
            best = (gap, width)
        if count > 2 * budget + 100:
            break
    if best is None or best[0] > tolerance * budget:
        return None
    return best[1]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("budget", [1_000, 3_000, 3_032, 10_000, 51_002, 250_000])
@pytest.mark.parametrize("depth", [1, 2, 6, 8, 20])
@pytest.mark.parametrize("at_most", [False, True])
def test_solver_takes_the_nearest_count_on_either_side(family, budget, depth, at_most):
    d_in, d_out = 2, 1
    expected = nearest_by_search(family, budget, depth, d_in, d_out, at_most=at_most)
    if expected is None:
        with pytest.raises(BudgetError) as caught:
            solve_width(family, budget, depth, d_in, d_out, at_most=at_most)
        nearest = caught.value.nearest_budget  # the budget it names is one the rule accepts
        assert nearest_by_search(family, nearest, depth, d_in, d_out, at_most=at_most) is not None
        return
    assert solve_width(family, budget, depth, d_in, d_out, at_most=at_most) == expected


def test_solver_hand_example():
    # FC depth 6 on 2-D input, one output: width 99 has 49,897, 100 has 50,901, 101 has 51,915.
    assert solve_width("fc", 51_002, 6, 2, 1) == 100  # 101 under against 913 over
    assert solve_width("fc", 50_900, 6, 2, 1) == 100  # 1 over beats 1,003 under
    assert solve_width("fc", 50_900, 6, 2, 1, at_most=True) == 99
    assert solve_width("fc", 50_399, 6, 2, 1) == 99  # 502 under against 502 over: a tie, narrower
    # LCW 100 (50,401: 401 over) beats 99 (49,402: 598 under); Han: 14 w + 1.
    assert solve_widths(50_000, 6, 2, 1) == {"fc": 99, "lcw": 100, "han": 3571}


def test_a_budget_met_from_above():
    """FC at depth 8 and 3,000 parameters: width 20 has 3,021 (0.7% over), width 19 2,737
    (8.8% under). The nearest count is above the budget, and within 5% of it."""
    assert definitions_formula("fc", 2, 1, 8, 20) == 3_021
    assert definitions_formula("fc", 2, 1, 8, 19) == 2_737
    assert solve_width("fc", 3_000, 8, 2, 1) == 20
    with pytest.raises(BudgetError):
        solve_width("fc", 3_000, 8, 2, 1, at_most=True)


@pytest.mark.parametrize(
    ("family", "depth", "narrowest"),
    [("lcw", 1, 1), ("lcw", 2, 2), ("lcw", 3, 2), ("fc", 2, 1), ("han", 2, 1), ("fc", 1, 1)],
)
def test_narrowest_buildable_width(family, depth, narrowest):
    # LCW's hidden-to-hidden rows sum to zero, which needs at least 2 inputs: from depth 2 on
    # (one such layer at depth 2) the narrowest LCW is 2 wide; at depth 1 there is none.
    assert min_width(family, depth) == narrowest


def test_lcw_at_depth_two_is_at_least_two_wide():
    with pytest.raises(SpecError, match=">= 2"):
        build_model("lcw", 2, 1, 2, width=1, seed=0)
    assert count_params(build_model("lcw", 2, 1, 1, width=1, seed=0)) == 5  # depth 1: 3 + 2
    # a budget only width 1 would meet is refused; the nearest budget is width 2's count
    narrowest = definitions_formula("lcw", 2, 1, 2, 2)
    assert narrowest == 13  # 3 * 2 + (2 * 1 + 2) + 3 * 1
    with pytest.raises(BudgetError) as caught:
        solve_width("lcw", narrowest - 1, 2, 2, 1)
    assert caught.value.nearest_budget == narrowest
    assert solve_width("lcw", narrowest, 2, 2, 1) == 2


def test_budget_below_the_narrowest_model():
    with pytest.raises(BudgetError) as caught:
        solve_width("fc", 10, 6, 2, 1)
    error = caught.value
    assert error.family == "fc" and error.depth == 6 and error.budget == 10
    # the narrowest model has 15 parameters: within 5% of budgets from ceil(15 / 1.05) = 15
    assert error.nearest_budget == definitions_formula("fc", 2, 1, 6, 1) == 15
    message = str(error)
    assert "fc" in message and "depth 6" in message and "10" in message and "15" in message
    assert solve_width("fc", 15, 6, 2, 1) == 1


def test_budget_not_met_within_five_percent():
    # LCW at depth 20: width 12 has 2,785 and width 13 has 3,264; 3,032 is 8.1% above 2,785
    # and 7.7% below 3,264.
    assert definitions_formula("lcw", 2, 1, 20, 12) == 2_785
    assert definitions_formula("lcw", 2, 1, 20, 13) == 3_264
    with pytest.raises(BudgetError) as caught:
        solve_width("lcw", 3_032, 20, 2, 1)
    error = caught.value
    assert (error.family, error.depth, error.budget) == ("lcw", 20, 3_032)
    assert (error.width, error.count) == (12, 2_785)
    # Width 12 serves budgets up to floor(2,785 / 0.95) = 2,931; width 13 from
    # ceil(3,264 / 1.05) = 3,109. 3,109 is 77 away, 2,931 is 101.
    assert error.nearest_budget == 3_109
    message = str(error)
    for fragment in ("lcw", "depth 20", "3,032", "2,931", "3,109", "3,264", "5%"):
        assert fragment in message
    assert solve_width("lcw", 3_109, 20, 2, 1) == 13
    assert solve_width("lcw", 2_931, 20, 2, 1) == 12


def test_nearest_budget_from_below_only():
    # at_most: width 12 of FC depth 20 (3,013) serves up to floor(3,013 / 0.95) = 3,171; width 13
    # (3,511) from 3,511. 3,450 is 279 above 3,171 and 61 below 3,511.
    assert definitions_formula("fc", 2, 1, 20, 12) == 3_013
    assert definitions_formula("fc", 2, 1, 20, 13) == 3_511
    with pytest.raises(BudgetError) as caught:
        solve_width("fc", 3_450, 20, 2, 1, at_most=True)
    assert caught.value.nearest_budget == 3_511
    assert solve_width("fc", 3_511, 20, 2, 1, at_most=True) == 13
    assert solve_width("fc", 3_450, 20, 2, 1) == 13  # 1.8% over: the nearest, within 5%


def test_tolerance_is_an_option():
    assert solve_width("lcw", 3_032, 20, 2, 1, tolerance=0.1) == 13  # 7.7% over, nearer than 12
    assert solve_width("lcw", 3_032, 20, 2, 1, tolerance=0.1, at_most=True) == 12


def test_solve_widths_names_the_family_that_fails():
    with pytest.raises(BudgetError, match="lcw at depth 20"):
        solve_widths(3_032, 20, 2, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"family": "resnet"},
        {"params": 0},
        {"depth": 0},
        {"d_in": -1},
        {"params": 10.5},
        {"depth": True},
    ],
)
def test_invalid_arguments(kwargs):
    arguments = {"family": "fc", "params": 1_000, "depth": 2, "d_in": 2, "d_out": 1} | kwargs
    with pytest.raises(SpecError):
        solve_width(**arguments)


def test_errors_are_value_errors():
    assert issubclass(BudgetError, ValueError) and issubclass(SpecError, ValueError)
