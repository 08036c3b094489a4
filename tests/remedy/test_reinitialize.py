"""``reinitialize``: what each method changes, what it leaves bit-identical, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from variability import RemedyError, build_model, reinitialize


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def identical(model: nn.Module, saved: dict[str, torch.Tensor]) -> list[str]:
    """Names of the parameters that are bit-for-bit what they were."""
    return [n for n, p in model.named_parameters() if torch.equal(p.detach(), saved[n])]


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(2048, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_lsuv_sets_every_unit_and_leaves_the_head_bit_identical(x):
    model = build_model("fc", 2, 1, 4, width=8, seed=0)
    saved = snapshot(model)
    result = reinitialize(model, x)
    assert set(result.changed_parameters) == {
        f"linear{k}.{p}" for k in range(1, 5) for p in ("weight", "bias")
    }
    assert identical(model, saved) == ["out.weight", "out.bias"]
    h = x
    for k in range(1, 5):  # per unit: E[z^2] = 1 and half of the inputs above 0
        z = getattr(model, f"linear{k}")(h).detach().double()
        assert torch.allclose(z.square().mean(dim=0), torch.ones(8, dtype=z.dtype), rtol=1e-4)
        assert ((z > 0).double().mean(dim=0) - 0.5).abs().max() <= 1 / 2048
        h = torch.relu(z).float()
    assert all(s.status == "changed" and s.how == "measured" for s in result.sites)


def test_units_are_rescaled_rows_of_the_original_weights(x):
    model = build_model("fc", 2, 1, 2, width=5, seed=3)
    before = model.linear2.weight.detach().clone()
    reinitialize(model, x)
    ratio = model.linear2.weight.detach() / before
    # each row multiplied by one positive number: the direction of every row is kept
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5)
    assert bool((ratio > 0).all())


def test_autoinit_first_layer_follows_the_analytic_formula(x):
    model = build_model("fc", 2, 1, 3, width=6, seed=1)
    w = model.linear1.weight.detach().double().clone()
    result = reinitialize(model, x, method="autoinit")
    assert [s.how for s in result.sites] == ["analytic"] * 3
    # inputs i.i.d. with mean m and second moment q: E[w.x] = m sum(w), var = (q - m^2) |w|^2
    m = float(x.double().mean())
    q = float(x.double().square().mean())
    alpha = 1.0 / torch.sqrt((q - m * m) * w.square().sum(dim=1))
    assert torch.allclose(model.linear1.weight.detach().double(), w * alpha[:, None], rtol=1e-6)
    beta = -alpha * m * w.sum(dim=1)
    assert torch.allclose(model.linear1.bias.detach().double(), beta, rtol=1e-5, atol=1e-7)
    # the first site's RMS is near the target (the inputs' two coordinates are independent)
    assert result.sites[0].rms_after == pytest.approx(1.0, abs=0.02)


def test_autoinit_measures_where_tracking_breaks():
    class Normed(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.norm = nn.Linear(3, 4), nn.LayerNorm(4)

        def forward(self, x):
            return torch.tanh(self.norm(self.linear(x)))

    model = Normed()
    with torch.no_grad():
        model.norm.weight.mul_(0.01)
    result = reinitialize(model, torch.randn(512, 3), method="autoinit")
    (site,) = result.sites
    assert (site.layer, site.how) == ("norm", "measured")
    assert site.rms_after == pytest.approx(1.0, rel=0.05)


def test_center_makes_rows_sum_to_zero_after_relu_and_nothing_else(x):
    model = build_model("fc", 2, 1, 3, width=6, seed=0)
    saved = snapshot(model)
    result = reinitialize(model, x, method="center")
    # the first layer reads the inputs (mean about 0): left alone; the others read ReLU outputs
    assert [s.status for s in result.sites] == ["unchanged", "changed", "changed"]
    assert set(result.changed_parameters) == {"linear2.weight", "linear3.weight"}
    for k in (2, 3):
        rows = getattr(model, f"linear{k}").weight.detach().double().sum(dim=1)
        assert rows.abs().max() < 1e-6
        centred = saved[f"linear{k}.weight"] - saved[f"linear{k}.weight"].mean(dim=1, keepdim=True)
        assert torch.allclose(getattr(model, f"linear{k}").weight.detach(), centred, atol=1e-7)
    assert sorted(identical(model, saved)) == sorted(
        ["linear1.weight", "linear1.bias", "linear2.bias", "linear3.bias", "out.weight", "out.bias"]
    )


def test_lsuv_on_lcw_keeps_the_rows_summing_to_zero(x):
    model = build_model("lcw", 2, 1, 3, width=6, seed=0)
    result = reinitialize(model, x)
    assert [s.layer for s in result.sites] == ["linear1", "lcw2", "lcw3"]
    assert all(abs(s.rms_after - 1.0) < 0.01 for s in result.sites)
    for k in (2, 3):
        assert getattr(model, f"lcw{k}").weight.detach().sum(dim=1).abs().max() < 1e-5


# --- bad input: one clear message, nothing changed ----------------------------------------------


def test_a_model_without_probe_sites_is_refused_unchanged():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    saved = snapshot(model)
    with pytest.raises(RemedyError, match="found no probe site in Sequential") as error:
        reinitialize(model, torch.randn(16, 2))
    assert "left unchanged" in str(error.value)
    assert len(identical(model, saved)) == 4


class FlippedSecondSite(nn.Module):
    """The second relu reads a flipped tensor: no layer made its input."""

    def __init__(self):
        super().__init__()
        self.first, self.second, self.head = nn.Linear(2, 4), nn.Linear(4, 4), nn.Linear(4, 1)

    def forward(self, x):
        h = torch.relu(self.first(x))
        h = torch.relu(self.second(h))
        return self.head(torch.relu(h.flip(-1)))


def test_a_site_without_producer_refuses_everything_unless_partial(x):
    model = FlippedSecondSite()
    saved = snapshot(model)
    with pytest.raises(RemedyError) as error:
        reinitialize(model, x)
    message = str(error.value)
    assert "\n" not in message
    assert "cannot reinitialize 1 of 3 sites: relu[2]: its input is made by no layer" in message
    assert "Nothing was changed" in message
    assert len(identical(model, saved)) == 6
    result = reinitialize(model, x, partial=True)
    assert [s.status for s in result.failed] == ["failed"]
    assert [s.site for s in result.failed] == ["relu[2]"]
    assert sorted(identical(model, saved)) == ["head.bias", "head.weight"]


def test_a_layer_dead_on_every_input_restores_what_was_already_changed(x):
    model = build_model("fc", 2, 1, 3, width=4, seed=0)
    with torch.no_grad():  # unit 2 of the second layer: zero weights, so the same on every input
        model.linear2.weight[2] = 0.0
    saved = snapshot(model)
    with pytest.raises(RemedyError) as error:
        reinitialize(model, x)
    message = str(error.value)
    assert "act2 (layer linear2): 1 of 4 units cannot reach the target" in message
    assert "dead on every input" in message
    # act1 had been fixed before act2 failed: it was put back, bit for bit
    assert len(identical(model, saved)) == len(saved)
    result = reinitialize(model, x, partial=True)
    assert result["act2"].changed_units == 3 and result["act2"].status == "failed"
    assert torch.equal(model.linear2.weight[2], saved["linear2.weight"][2])
    assert torch.equal(model.linear2.bias[2], saved["linear2.bias"][2])


def test_shared_layer_and_bad_settings_are_refused(x):
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 2)

        def forward(self, x):
            return torch.relu(self.layer(torch.relu(self.layer(x))))

    with pytest.raises(RemedyError, match=r"layer runs 2 times per forward pass \(shared"):
        reinitialize(Shared(), x)
    model = build_model("fc", 2, 1, 2, width=4, seed=0)
    with pytest.raises(RemedyError, match="unknown method 'kaiming'; known: lsuv, autoinit"):
        reinitialize(model, x, method="kaiming")
    with pytest.raises(RemedyError, match="active_fraction must lie strictly between 0 and 1"):
        reinitialize(model, x, active_fraction=1.0)
    with pytest.raises(RemedyError, match="needs inputs"):
        reinitialize(model, [])


def test_han_layers_say_why_they_are_left_alone(x):
    model = build_model("han", 2, 1, 3, width=6, seed=0)
    with pytest.raises(RemedyError, match="HanLayer makes its own pre-activation"):
        reinitialize(model, x)
    result = reinitialize(model, x, partial=True)
    assert [s.status for s in result.sites] == ["changed", "failed", "failed"]


def test_mode_is_restored_and_the_target_is_an_option(x):
    model = build_model("fc", 2, 1, 2, width=4, seed=0).train()
    result = reinitialize(model, x, second_moment=4.0, active_fraction=0.25)
    assert model.training
    assert all(s.rms_after == pytest.approx(2.0, rel=1e-3) for s in result.sites)
    assert all(s.above_after == pytest.approx(0.25, abs=1e-3) for s in result.sites)
    assert math.isclose(result.second_moment, 4.0)


class FeedsBothWays(nn.Module):
    """``h = first(x)`` feeds the second site directly and the first site through ``second``:
    setting ``first`` for the second site moves the first site off its target again."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(2, 4), nn.Linear(4, 4)

    def forward(self, x):
        h = self.first(x)
        return torch.relu(self.second(h)) + torch.tanh(h.clone())


def test_a_site_moved_again_by_a_later_change_is_reported(x):
    torch.manual_seed(0)
    model = FeedsBothWays()
    with torch.no_grad():
        model.first.weight.mul_(5.0)
    saved = snapshot(model)
    with pytest.raises(RemedyError, match=r"relu .*moved off the target again by a later site"):
        reinitialize(model, x)
    assert len(identical(model, saved)) == 4
    result = reinitialize(model, x, partial=True)
    assert [s.status for s in result.sites] == ["failed", "changed"]
