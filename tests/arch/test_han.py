"""The Han layer: orthogonal Jacobian, gradient norm through depth, fused backward."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from variability.arch import HanLayer
from variability.arch.han import _HanFunction, han_reference, unit_direction
from variability.probes.activations import activation_for_module


def householder_dense(u: torch.Tensor) -> torch.Tensor:
    """The reflector as a dense matrix, only for checking small layers."""
    u_hat = u / u.norm()
    return torch.eye(len(u), dtype=u.dtype) - 2.0 * torch.outer(u_hat, u_hat)


def test_forward_matches_dense_householder_formula():
    torch.manual_seed(0)
    layer = HanLayer(7).double()
    with torch.no_grad():
        layer.u.mul_(3.5)  # the layer must use u / |u|, not u
    x = torch.randn(11, 7, dtype=torch.float64, requires_grad=True)
    expected = (x @ householder_dense(layer.u).T + layer.b).abs()
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_hand_computed_value():
    # u along e1 reflects the first coordinate: H (x1, x2) = (-x1, x2).
    layer = HanLayer(2)
    with torch.no_grad():
        layer.u.copy_(torch.tensor([2.0, 0.0]))
        layer.b.copy_(torch.tensor([0.5, -3.0]))
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    assert layer(x).tolist() == [[0.5, 1.0]]  # |-1 + 0.5|, |2 - 3|
    assert layer.preactivation(x).tolist() == [[-0.5, -1.0]]


@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 5, 7), (2, 1, 3, 7)])
def test_any_batch_shape(shape):
    torch.manual_seed(1)
    layer = HanLayer(7)
    x = torch.randn(*shape, requires_grad=True)
    out = layer(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, han_reference(x, layer.u, layer.b))
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_non_contiguous_input():
    torch.manual_seed(2)
    layer = HanLayer(6)
    x = torch.randn(6, 9, requires_grad=True)
    view = x.t()  # (9, 6), not contiguous
    torch.testing.assert_close(layer(view), han_reference(view, layer.u, layer.b))


def test_wrong_width_is_a_clear_error():
    with pytest.raises(ValueError, match="width=4"):
        HanLayer(4)(torch.randn(2, 5))


def test_never_forms_the_width_by_width_matrix():
    # A dense reflector at this width would need 2e5^2 * 4 bytes = 160 GB.
    layer = HanLayer(200_000)
    x = torch.randn(3, 200_000, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    # |H x + b| has norm within |b| of |x|, since H preserves norms.
    gap = (out.norm(dim=1) - x.detach().norm(dim=1)).abs()
    assert (gap <= layer.b.detach().norm() * (1 + 1e-5)).all()
    assert layer.u.grad is not None and torch.isfinite(layer.u.grad).all()


def test_initialisation():
    width = 400
    layer = HanLayer(width, generator=torch.Generator().manual_seed(3))
    assert layer.u.norm().item() == pytest.approx(1.0, abs=1e-6)
    bound = 1.0 / math.sqrt(width)
    assert layer.b.abs().max().item() <= bound
    assert layer.b.abs().max().item() > 0.9 * bound  # spread over the whole interval
    assert abs(layer.b.mean().item()) < 0.2 * bound
    again = HanLayer(width, generator=torch.Generator().manual_seed(3))
    assert torch.equal(layer.u, again.u) and torch.equal(layer.b, again.b)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_jacobian_singular_values_are_one(dtype, tol):
    generator = torch.Generator().manual_seed(4)
    for width in (5, 16, 33):
        layer = HanLayer(width, generator=generator).to(dtype)
        for _ in range(3):
            x = torch.randn(width, generator=generator, dtype=torch.float64).to(dtype)
            jac = jacobian(layer, x)
            singular = torch.linalg.svdvals(jac.double())
            assert singular.shape == (width,)
            torch.testing.assert_close(singular, torch.ones_like(singular), rtol=0, atol=tol)


def test_gradient_norm_through_200_layers():
    width, depth = 64, 200
    generator = torch.Generator().manual_seed(5)
    stack = torch.nn.Sequential(*[HanLayer(width, generator=generator) for _ in range(depth)])
    x = torch.randn(8, width, generator=generator, requires_grad=True)
    incoming = torch.randn(8, width, generator=generator)
    stack(x).backward(incoming)
    # Per sample, the Jacobian is orthogonal, so each sample's gradient keeps its norm.
    ratio = x.grad.norm(dim=1) / incoming.norm(dim=1)
    torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=1e-4, atol=0)


def test_fused_gradients_match_autograd_reference():
    torch.manual_seed(6)
    layer = HanLayer(9)
    with torch.no_grad():
        layer.u.mul_(0.3)
    x = torch.randn(4, 3, 9, requires_grad=True)
    incoming = torch.randn(4, 3, 9)
    layer(x).backward(incoming)
    fused = (x.grad.clone(), layer.u.grad.clone(), layer.b.grad.clone())
    x.grad = None
    layer.zero_grad()
    han_reference(x, layer.u, layer.b).backward(incoming)
    for got, want in zip(fused, (x.grad, layer.u.grad, layer.b.grad), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64():
    torch.manual_seed(7)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    u = (0.7 * torch.randn(6, dtype=torch.float64)).requires_grad_(True)
    b = torch.randn(6, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(_HanFunction.apply, (x, u, b), eps=1e-6, atol=1e-7)


def test_gradcheck_through_blocks():
    # Several row blocks (the fused kernel processes rows in blocks): sums must accumulate.
    import variability.arch.han as han_module

    saved = han_module._CHUNK_ELEMENTS
    han_module._CHUNK_ELEMENTS = 8  # 2 rows of width 4 per block
    try:
        x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
        u = torch.randn(4, dtype=torch.float64, requires_grad=True)
        b = torch.randn(4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(han_module._HanFunction.apply, (x, u, b), eps=1e-6)
    finally:
        han_module._CHUNK_ELEMENTS = saved


def test_stable_when_u_is_tiny():
    # |u|^2 underflows to 0 for these (float32 squares underflow below about 1e-23; 1e-40 is
    # subnormal), yet the direction u / |u| is well defined and the layer must use it.
    x = torch.randn(5, 8, dtype=torch.float64)
    direction = torch.randn(8, dtype=torch.float64)
    for scale, dtype in [(1e-30, torch.float32), (1e-40, torch.float32), (1e-300, torch.float64)]:
        layer = HanLayer(8).to(dtype)
        with torch.no_grad():
            layer.u.copy_(direction * scale)
        assert (layer.u != 0).all(), "the test needs a tiny but non-zero u"
        assert (layer.u.pow(2).sum() == 0).item(), "the test needs |u|^2 to underflow"
        stored = layer.u.detach().double() / scale  # what was stored, rescaled exactly in float64
        expected = (x @ householder_dense(stored).T + layer.b.detach().double()).abs()
        xd = x.to(dtype).requires_grad_(True)
        out = layer(xd)
        tolerance = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(out.double(), expected, rtol=tolerance, atol=tolerance)
        out.sum().backward()
        assert torch.isfinite(xd.grad).all()
        assert torch.isfinite(layer.u.grad).all()
        u_hat, length = unit_direction(layer.u)
        assert u_hat.norm().item() == pytest.approx(1.0, abs=1e-6)
        assert 0 < length.item() < 1e-20


def test_zero_u_reflects_nothing():
    layer = HanLayer(3)
    with torch.no_grad():
        layer.u.zero_()
    x = torch.randn(4, 3, requires_grad=True)
    out = layer(x)
    torch.testing.assert_close(out, (x + layer.b).abs())
    out.sum().backward()
    assert torch.equal(layer.u.grad, torch.zeros(3))


def test_registered_with_the_probe_engine():
    layer = HanLayer(4)
    rule = activation_for_module(layer)
    assert rule is not None and rule.name == "han"
    x = torch.randn(6, 4)
    z = rule.read_preactivation(layer, (x,), layer(x))
    torch.testing.assert_close(z, layer.preactivation(x))
    torch.testing.assert_close(z.abs(), layer(x))
    assert rule.active(torch.tensor([0.0, -1.0, 2.0]), 0.1).tolist() == [False, True, True]
    assert rule.count_from_output(torch.tensor([0.0, 3.0])).tolist() == [0.0, 1.0]


def test_traceable_by_torch_fx():
    layer = torch.nn.Sequential(torch.nn.Linear(3, 4), HanLayer(4))
    traced = torch.fx.symbolic_trace(layer)
    x = torch.randn(2, 3)
    torch.testing.assert_close(traced(x), layer(x))


def test_unfused_layer_supports_double_backward():
    torch.manual_seed(8)
    layer = HanLayer(5).double()
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    fused = layer(x)
    layer.fused = False
    plain = layer(x)
    torch.testing.assert_close(plain, fused)
    # A Hessian-vector product with respect to u needs the graph of the gradient.
    (grad_u,) = torch.autograd.grad(plain.pow(2).sum(), layer.u, create_graph=True)
    (hvp,) = torch.autograd.grad(grad_u @ torch.ones(5, dtype=torch.float64), layer.u)
    assert torch.isfinite(hvp).all() and hvp.abs().sum() > 0
    # The fused kernel refuses double backward with an error instead of a wrong answer.
    layer.fused = True
    (grad_u,) = torch.autograd.grad(layer(x).pow(2).sum(), layer.u, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad_u.sum(), layer.u)
