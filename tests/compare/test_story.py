"""The papers' story at a small size, read from results.jsonl: FC-ReLU collapses to a constant at
the largest depth for most seeds, Han never does; every count and output V checked by hand."""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from variability import build_model
from variability.tasks import checkerboard_grid

from .conftest import TINY_CELLS, read_results

BUDGET = 640


def hand_count(family: str, depth: int, width: int, d_in: int = 2, d_out: int = 1) -> int:
    """DEFINITIONS.md's parameter counts, written out again."""
    outer = (d_in + 1) * width + (width + 1) * d_out
    hidden = {
        "fc": (depth - 1) * (width * width + width),
        "lcw": (depth - 1) * (width * (width - 1) + width),
        "han": 2 * width * (depth - 1),
    }[family]
    return outer + hidden


def by_family_and_depth(records: list[dict]) -> dict[tuple[str, int], list[dict]]:
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for record in records:
        groups[(record["family"], record["depth"])].append(record)
    return groups


def test_fc_relu_collapses_at_the_largest_depth_and_han_never(tiny_comparison):
    records = read_results(tiny_comparison[0])
    assert len(records) == TINY_CELLS
    groups = by_family_and_depth(records)
    deepest = max(r["depth"] for r in records)
    fc_deep = groups[("fc", deepest)]
    assert len(fc_deep) == 3
    assert sum(r["network_collapsed"] for r in fc_deep) >= 2, "most FC seeds should collapse"
    for record in fc_deep:
        if record["network_collapsed"]:
            assert record["output_variability"] <= 1e-3
            assert record["first_collapsed_site"].startswith("act")
    han = [r for r in records if r["family"] == "han"]
    assert {r["depth"] for r in han} == {2, deepest}
    assert not any(r["network_collapsed"] for r in han)
    assert all(r["first_collapsed_site"] is None for r in han)
    assert min(r["output_variability"] for r in han) > 1e-3
    assert not any(r["network_collapsed"] for r in groups[("fc", 2)])


def test_every_model_has_the_count_nearest_the_budget_and_its_exact_count(tiny_comparison):
    for record in read_results(tiny_comparison[0]):
        family, depth, width = record["family"], record["depth"], record["width"]
        assert record["params"] == hand_count(family, depth, width)
        gap = abs(record["params"] - BUDGET)
        assert gap <= abs(hand_count(family, depth, width + 1) - BUDGET)
        assert gap <= abs(hand_count(family, depth, width - 1) - BUDGET)
        assert gap <= 0.05 * BUDGET  # the default tolerance, on either side
    counts = {(r["family"], r["depth"]): (r["width"], r["params"]) for r in read_results(
        tiny_comparison[0])}  # fmt: skip
    assert counts == {("fc", 2): (23, 645), ("fc", 32): (4, 637), ("han", 2): (106, 637),
                      ("han", 32): (10, 661)}  # fmt: skip


def test_output_variability_at_initialisation_matches_a_hand_computation(tiny_comparison):
    """V of a one-unit output: sqrt(population variance / mean square) over the input grid."""
    grid = torch.from_numpy(checkerboard_grid()).float().reshape(-1, 2)
    for record in read_results(tiny_comparison[0]):
        if record["seed"] != 0:
            continue
        model = build_model(
            record["family"], 2, 1, record["depth"], width=record["width"], seed=record["seed"]
        )
        with torch.no_grad():
            out = model(grid).double().flatten()
        mean_square = float((out**2).mean())
        variance = float(((out - out.mean()) ** 2).mean())
        expected = math.sqrt(variance / mean_square) if mean_square > 0 else 0.0
        assert math.isclose(record["output_variability"], expected, rel_tol=1e-4, abs_tol=1e-9)
        assert record["network_collapsed"] == (expected <= 1e-3)


def test_each_record_holds_the_figures_at_init_and_the_test_score(tiny_comparison):
    for record in read_results(tiny_comparison[0]):
        sites = record["sites"]
        hidden = record["depth"]
        assert len(sites) == hidden  # one probe site per hidden layer in all three families
        assert [s["depth"] for s in sites] == sorted(s["depth"] for s in sites)
        assert all(0.0 <= s["activation_ratio"] <= 1.0 for s in sites)
        assert record["v3"] is not None and record["v3"] >= 0.0  # 2 inputs: V3 is measured
        assert record["pieces_per_line"] >= 1.0
        assert record["metric"] == "accuracy" and 0.0 <= record["test"] <= 1.0
        assert 0 <= record["best_step"] <= record["steps"] == 4
        assert record["run_dir"] == f"cells/{record['cell']}"
