"""The Han layer: ``x -> |H x + b|``, H a learned Householder reflector ``I - 2 u_hat u_hat^T``.

Yu & Zhang (arXiv 2106.04088): the Jacobian ``diag(sign(Hx + b)) H`` is orthogonal almost
everywhere, so a stack of Han layers neither shrinks nor grows gradients, at 2 * width
parameters per layer.

The reflector is applied as ``x - 2 (x . u_hat) u_hat``: O(width) work per sample, never the
width x width matrix. Forward and backward are one ``torch.autograd.Function`` so the backward pass
reads each saved tensor once or twice instead of going through a chain of elementwise autograd
nodes; that is what makes the layer an order of magnitude faster than ``nn.Linear`` at width 1024.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from variability.arch.errors import SpecError
from variability.probes.activations import ABS, Activation, register_activation

__all__ = ["HanLayer", "han_reference", "unit_direction"]


def unit_direction(u: Tensor) -> tuple[Tensor, Tensor]:
    """``(u / |u|, |u|)``, exact for tiny u, and ``(0, 0)`` for u == 0.

    Dividing by ``max|u|`` first keeps ``|u|^2`` from underflowing (float32 squares underflow
    below about 1e-23). A zero u has no direction: the layer then reflects nothing (H = I).
    Branch-free, so it never synchronises with a GPU.
    """
    scale = u.detach().abs().amax()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    scaled = u / scale
    length = torch.linalg.vector_norm(scaled)
    safe = torch.where(length > 0, length, torch.ones_like(length))
    return scaled / safe, length * scale


def han_reference(x: Tensor, u: Tensor, b: Tensor, absolute: bool = True) -> Tensor:
    """The Han layer in plain differentiable torch ops (no custom backward).

    Used where a custom autograd Function does not fit (torch.fx tracing, double backward,
    ``HanLayer.fused = False``) and as the reference the fused version is tested against.
    ``absolute=False`` returns the pre-activation ``H x + b``.
    """
    u_hat, _ = unit_direction(u)
    y = x - 2.0 * (x @ u_hat).unsqueeze(-1) * u_hat + b
    return y.abs() if absolute else y


def _han_inference(x: Tensor, u: Tensor, b: Tensor) -> Tensor:
    """The forward pass without autograd bookkeeping: four passes over x, one new tensor."""
    u_hat, _ = unit_direction(u)
    flat = x.reshape(-1, x.shape[-1])
    y = torch.addcmul(flat, (flat @ u_hat).unsqueeze(1), u_hat, value=-2.0)
    return y.add_(b).abs_().reshape(x.shape)


_CHUNK_ELEMENTS = 1 << 20
"""Rows are processed in blocks of about this many elements (4 MB in float32), so that the several
passes each step makes over a block find it in cache instead of main memory."""


def _row_blocks(rows: int, width: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, width))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


class _HanFunction(torch.autograd.Function):
    """Fused forward and backward of ``|x - 2 (x . u_hat) u_hat + b|`` for x of shape (N, width).

    Saved: ``y = H x + b`` and ``p = x . u_hat`` (one activation-sized tensor per layer; x itself
    is not needed, since H is its own inverse and ``x = H (y - b)``). Backward, with g the
    incoming gradient, ``g_y = g * sign(y)`` and ``q = g_y . u_hat`` per sample:

    - ``dL/dx = H g_y = g_y - 2 q u_hat``
    - ``dL/db = sum_n g_y``
    - ``dL/du_hat = -2 sum_n (q x + p g_y)``, with ``sum_n q x = H (sum_n q y - (sum_n q) b)``;
      then projected off u_hat and divided by |u| (by machine epsilon if |u| is smaller).

    Rows are processed in blocks so each block is read from main memory once per pass direction
    and the other passes over it hit the cache.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, u: Tensor, b: Tensor) -> Tensor:
        u_hat, length = unit_direction(u)
        y = torch.empty_like(x)
        out = torch.empty_like(x)
        p = x.new_empty(x.shape[0])  # x . u_hat per sample
        for rows in _row_blocks(x.shape[0], x.shape[1]):
            block, source = y[rows], x[rows]
            torch.mv(source, u_hat, out=p[rows])
            torch.addcmul(source, p[rows].unsqueeze(1), u_hat, value=-2.0, out=block)
            block.add_(b)
            torch.abs(block, out=out[rows])
        ctx.save_for_backward(y, p, u_hat, length, b)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        y, p, u_hat, length, b = ctx.saved_tensors
        need_x, need_u, need_b = ctx.needs_input_grad
        grad_out = grad_out.contiguous()
        width = y.shape[1]
        grad_x = torch.empty_like(y) if need_x else None
        g_total = y.new_zeros(width)  # sum_n g_y
        pg = y.new_zeros(width)  # sum_n p_n g_y
        qy = y.new_zeros(width)  # sum_n q_n y_n
        q_total = y.new_zeros(())  # sum_n q_n
        blocks = _row_blocks(y.shape[0], width)
        scratch = y.new_empty(blocks[0].stop - blocks[0].start if blocks else 0, width)
        for rows in blocks:
            g, block = scratch[: rows.stop - rows.start], y[rows]
            torch.sign(block, out=g)
            g.mul_(grad_out[rows])  # the gradient with respect to y
            q = g @ u_hat
            if grad_x is not None:  # need_x
                torch.addcmul(g, q.unsqueeze(1), u_hat, value=-2.0, out=grad_x[rows])
            if need_b:
                g_total.add_(g.sum(dim=0))
            if need_u:
                pg.add_(p[rows] @ g)
                qy.add_(q @ block)
                q_total.add_(q.sum())
        grad_b = g_total if need_b else None
        grad_u = None
        if need_u:
            v = qy - q_total * b
            qx = v - 2.0 * (v @ u_hat) * u_hat  # sum_n q_n x_n = H (sum_n q_n y_n - q_total b)
            grad_u_hat = (qx + pg).mul_(-2.0)
            radial = (grad_u_hat @ u_hat) * u_hat
            # d u_hat / du = (I - u_hat u_hat^T) / |u|. Below machine epsilon, |u| is floored so
            # the gradient stays finite: same direction, bounded size (only u's direction matters).
            floor = torch.finfo(length.dtype).eps
            grad_u = torch.where(length > 0, (grad_u_hat - radial) / length.clamp(min=floor), 0.0)
        return grad_x, grad_u, grad_b


class HanLayer(nn.Module):
    """``y = |x - 2 (x . u_hat) u_hat + b|`` over the last axis, for inputs of any batch shape.

    Parameters: ``u`` (the reflector's direction, used only through ``u / |u|``) and ``b``, both of
    size ``width``. Initialisation (DEFINITIONS.md): u a random unit vector, b uniform in
    ``[-1/sqrt(width), 1/sqrt(width)]``.

    The layer is 1-Lipschitz and its Jacobian ``diag(sign(y)) H`` is orthogonal wherever no
    component of ``H x + b`` is exactly 0. The fused kernel supports one backward pass; for
    double backward (``create_graph=True``) or ``torch.func`` transforms set ``layer.fused =
    False`` (plain differentiable ops, slower). In ``torch.no_grad`` and under torch.fx tracing
    the layer needs no kernel and runs plain torch ops.
    """

    def __init__(
        self,
        width: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if int(width) < 1:
            raise SpecError(f"HanLayer needs width >= 1, got {width}")
        self.width = int(width)
        self.fused = True
        self.u = nn.Parameter(torch.empty(self.width, device=device, dtype=dtype))
        self.b = nn.Parameter(torch.empty(self.width, device=device, dtype=dtype))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """u: a uniformly random unit vector (normalised Gaussian); b: U[-1/sqrt(w), 1/sqrt(w)]."""
        with torch.no_grad():
            direction = torch.randn(self.width, generator=generator, dtype=torch.float64)
            self.u.copy_(direction / direction.norm())
            bound = 1.0 / math.sqrt(self.width)
            uniform = torch.rand(self.width, generator=generator, dtype=torch.float64)
            self.b.copy_((2.0 * uniform - 1.0) * bound)

    @property
    def u_hat(self) -> Tensor:
        """The unit direction of the reflector (zero if u is zero)."""
        return unit_direction(self.u)[0]

    def preactivation(self, x: Tensor) -> Tensor:
        """``H x + b``: the tensor whose absolute value is the layer's output (for the probes)."""
        return han_reference(x, self.u, self.b, absolute=False)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, torch.fx.Proxy) or not self.fused:
            return han_reference(x, self.u, self.b)
        if x.shape[-1] != self.width:
            raise ValueError(
                f"HanLayer(width={self.width}) got an input whose last axis has size {x.shape[-1]}"
            )
        if not torch.is_grad_enabled():
            return _han_inference(x, self.u, self.b)
        flat = x.reshape(-1, self.width)
        if not flat.is_contiguous():
            flat = flat.contiguous()
        out = _HanFunction.apply(flat, self.u, self.b)
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"width={self.width}"


def _han_preactivation(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Tensor:
    assert isinstance(module, HanLayer)  # the rule below is registered for HanLayer only
    return module.preactivation(inputs[0])


# The probe engine's rule for a Han site: a unit is active where H x + b != 0 (slope +-1 there).
register_activation(
    HanLayer,
    Activation(
        "han",
        lambda z, tau: z != 0,
        preactivation=_han_preactivation,
        count_from_output=torch.sign,
        piece=ABS.piece,
    ),
)
