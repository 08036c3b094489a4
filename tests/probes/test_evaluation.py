"""The evaluation helper: eval mode, no gradients, chunked forward, mode restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from variability.probes.evaluation import evaluating, predict


def dropout_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))


def test_evaluating_switches_to_eval_without_gradients_and_restores_the_mode():
    model = dropout_model().train()
    with evaluating(model) as inside:
        assert inside is model and not model.training and not torch.is_grad_enabled()
    assert model.training and torch.is_grad_enabled()
    model.eval()
    with evaluating(model):
        pass
    assert not model.training  # a model already in eval mode stays there


def test_evaluating_restores_the_mode_when_the_block_raises():
    model = dropout_model().train()
    with pytest.raises(RuntimeError, match="inside"), evaluating(model):
        raise RuntimeError("inside")
    assert model.training


class FixedMode(nn.Module):
    """Like a torch.export module: traced in one mode, it refuses train() and eval()."""

    def train(self, mode: bool = True) -> FixedMode:
        raise NotImplementedError("fixed mode")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def test_a_model_whose_mode_is_fixed_still_runs():
    model = FixedMode()
    assert torch.equal(predict(model, torch.ones(5, 2), batch_size=2), torch.full((5, 2), 2.0))


def test_predict_is_the_eval_mode_output_in_any_chunk_size():
    model = dropout_model().train()
    x = torch.randn(37, 3)
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    for batch_size in (1, 8, 37, 100):
        outputs = predict(model, x, batch_size=batch_size)
        torch.testing.assert_close(outputs, expected)
        assert not outputs.requires_grad
    assert model.training


def test_predict_moves_inputs_to_the_model_and_takes_models_without_parameters():
    x = torch.randn(4, 3, dtype=torch.float64)
    assert predict(nn.Identity(), x).device == x.device
    assert predict(dropout_model(), x.float(), device="cpu").shape == (4, 2)
