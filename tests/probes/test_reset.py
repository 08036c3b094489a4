"""``Probe.reset()`` forgets everything: after it, figures equal a fresh probe's.

reset() keeps the statistics objects aside and clears them for the sites that run next (a
Monitor resets at every recorded step); nothing of an earlier window may leak into a later one.
"""

import pytest
import torch
from torch import nn

from variability import Probe


class Branchy(nn.Module):
    """Two ReLU branches; ``use_b`` decides whether the second runs (so sites come and go)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Linear(3, 6), nn.ReLU())
        self.b = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
        self.head = nn.Linear(6, 2)
        self.use_b = True

    def forward(self, x):
        h = self.a(x)
        if self.use_b:
            h = h + self.b(h).sum(-1, keepdim=True)
        return self.head(h)


def _run(probe, model, x, grads=False):
    with probe:
        if grads:
            model(x).pow(2).mean().backward()
        else:
            with torch.no_grad():
                model(x)


def _same(one, other):
    assert one.to_dict() == other.to_dict()


@pytest.mark.parametrize("redundancy", [False, True])
@pytest.mark.parametrize("grads", [False, True])
def test_figures_after_reset_equal_a_fresh_probe(redundancy, grads):
    torch.manual_seed(0)
    model = Branchy()
    first = torch.randn(50, 3) * 100 + 7  # far from the second window: a leak would show
    second = torch.randn(40, 3)
    second[0, 1] = float("nan")  # the first sample of the window holds a NaN
    kept = Probe(model, redundancy=redundancy, gradients=grads)
    _run(kept, model, first, grads)
    kept.reset()
    _run(kept, model, second, grads)
    fresh = Probe(model, redundancy=redundancy, gradients=grads)
    _run(fresh, model, second, grads)
    _same(kept.results(), fresh.results())
    assert kept.results()["output"].nonfinite > 0


def test_a_site_that_does_not_run_after_reset_is_not_reported():
    torch.manual_seed(1)
    model = Branchy()
    x = torch.randn(30, 3)
    probe = Probe(model)
    _run(probe, model, x)
    assert "b.1" in probe.results().site_names()
    probe.reset()
    probe.reset()  # twice in a row: the kept statistics stay available
    model.use_b = False
    _run(probe, model, x)
    results = probe.results()
    assert "b.1" not in results.site_names()
    assert "b.1" in results.unused_sites
    model.use_b = True
    probe.reset()
    _run(probe, model, x)
    fresh = Probe(model)
    _run(fresh, model, x)
    _same(probe.results(), fresh.results())


def test_results_are_not_changed_by_later_batches_or_reset():
    torch.manual_seed(2)
    model = Branchy()
    probe = Probe(model)
    _run(probe, model, torch.randn(30, 3))
    before = probe.results()
    snapshot = before.to_dict()
    probe.reset()
    _run(probe, model, torch.randn(30, 3) * 5)
    assert before.to_dict() == snapshot
