"""A ProbeResults is one collection: iteration, len and lookup by name cover the same sites."""

from __future__ import annotations

import torch
from torch import nn

from variability.probes import probe_model


def test_iteration_len_and_lookup_cover_the_sites_and_the_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    results = probe_model(model, torch.rand(64, 2))
    names = [site.name for site in results]
    assert names == ["1", "3", "output"] and len(results) == len(names)
    assert [results[name] for name in names] == list(results)
    assert results["output"] is results.output and list(results.sites) == list(results)[:-1]
    assert len(results.to_pandas()) == len(results)
