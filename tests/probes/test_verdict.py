"""The network's verdict at its edges: sites without data, no output, and statuses as an enum."""

import json
import math

import pytest
import torch
from torch import nn

from variability import Probe, ProbeResults, SiteResult, Status, Thresholds, probe_model

# Each probe test runs with the compiled kernel and with PyTorch's reductions.
pytestmark = pytest.mark.usefixtures("reduction")


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))


def test_all_nan_inputs_give_no_data_and_no_verdict():
    # On main: first_collapsing_site was "1" (a site without data counted as collapsing),
    # network_collapsed False and the repr said "not collapsed".
    results = probe_model(mlp(), torch.full((20, 3), float("nan")))
    assert [s.status for s in results.all_sites()] == [Status.NO_DATA] * 3
    assert all(math.isnan(s.variability) for s in results.all_sites())
    assert results.first_collapsing_site is None
    assert results.first_collapsed_site is None
    assert results.network_collapsed is None
    text = repr(results)
    assert "not collapsed" not in text
    assert "network: no verdict (no finite value reached the output)" in text
    data = json.loads(results.to_json())
    assert data["verdict"]["network_collapsed"] is None
    assert data["verdict"]["first_collapsing_site"] is None
    assert [s["status"] for s in data["sites"]] == ["no data", "no data"]


def test_no_output_tensor_gives_no_verdict():
    class NoTensor(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            self.act(x)
            return None

    model = NoTensor()
    with Probe(model) as probe, torch.no_grad():
        model(torch.randn(5, 2))
    results = probe.results()
    assert results.output is None and results.network_collapsed is None
    text = repr(results)
    assert "network: no verdict (no output measured)" in text and "not collapsed" not in text


def site(name: str, v: float, status: Status | None = None) -> SiteResult:
    return SiteResult(
        name=name,
        kind="relu",
        source="module",
        depth=0,
        units=4,
        samples=10,
        variability=v,
        status=Thresholds().status(v) if status is None else status,
        constant_units=0,
        constant_fraction=0.0,
        nonfinite=0,
        rms=1.0,
    )


def test_first_collapsing_site_skips_sites_without_data():
    sites = (site("a", math.nan), site("b", 0.5), site("c", 0.04), site("d", 1e-4))
    results = ProbeResults(sites, site("output", 0.3), Thresholds(), samples=10)
    assert [s.status for s in sites] == ["no data", "healthy", "collapsing", "collapsed"]
    assert results.first_collapsing_site == "c"
    assert results.first_collapsed_site == "d"
    assert results.network_collapsed is False
    assert "network: not collapsed; first collapsed site: d" in repr(results)
    # a collapsed site is also at or below the collapsing level
    only_collapsed = ProbeResults((site("a", math.nan), site("d", 0.0)), None, Thresholds(), 10)
    assert only_collapsed.first_collapsing_site == "d"


def test_statuses_are_an_enum_whose_json_is_the_plain_word():
    assert Thresholds().status(0.5) is Status.HEALTHY
    assert Thresholds().status(math.nan) is Status.NO_DATA
    assert [str(s) for s in Status] == [
        "healthy",
        "collapsing",
        "collapsed",
        "dead units",
        "no data",
    ]
    assert Status("no data") is Status.NO_DATA and Status.COLLAPSED == "collapsed"
    assert f"{Status.COLLAPSING:>12}" == "  collapsing"
    assert [s for s in Status if s.at_or_below_collapsing] == [
        Status.COLLAPSING,
        Status.COLLAPSED,
    ]
    levels = Thresholds(collapsed=0.99, collapsing=0.999)
    results = probe_model(mlp(), torch.randn(30, 3), thresholds=levels)
    assert results.network_collapsed is True
    data = json.loads(results.to_json())
    assert data["output"]["status"] == "collapsed"
    assert isinstance(results.output.status, Status)
    frame = results.to_pandas()
    assert list(frame["status"]) == ["collapsed"] * 3
