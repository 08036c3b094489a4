"""LCW, linearly constrained weights (Kutsuna, arXiv 2403.13833): weight rows that sum to zero.

A unit's pre-activation ``z = w . a`` has mean ``w . E[a]``. When the incoming activations share a
non-zero mean (sigmoid outputs hover around 1/2), that mean differs from unit to unit: the
*activation shift*. A row with ``w . 1 = 0`` cancels the shared part exactly. The constraint is
built in by reparameterisation, ``w = B v``, with B a fixed orthonormal basis of the vectors
orthogonal to all-ones, so any optimiser keeps it without projection steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from variability.arch.errors import SpecError
from variability.probes.layout import register_layer

__all__ = ["LCWLinear", "zero_sum_basis"]


def zero_sum_basis(m: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """An m x (m-1) orthonormal basis of ``{w : w . 1 = 0}``: the normalised Helmert contrasts.

    Column k (1-based) is ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k+1))`` with k ones. It is fixed
    (no randomness), so every LCW layer of a size uses the same basis on every machine. Built in
    float64 and rounded once, so the column sums are 0 to float rounding.
    """
    if m < 2:
        raise SpecError(f"a zero-sum basis needs m >= 2, got {m}")
    k = torch.arange(1, m, dtype=torch.float64)
    scale = 1.0 / torch.sqrt(k * (k + 1.0))
    rows = torch.arange(m, dtype=torch.float64).unsqueeze(1)
    basis = (rows < k).to(torch.float64) * scale  # the k leading ones of column k
    index = torch.arange(m - 1)
    basis[index + 1, index] = -k * scale  # the -k just below them
    return basis.to(dtype)


class LCWLinear(nn.Module):
    """A Linear layer whose every weight row sums to zero: ``weight = v @ B^T``, ``B`` a buffer.

    Trainable: ``v`` of shape (out, in - 1) and ``bias`` of shape (out,), so
    ``out * (in - 1) + out`` parameters. ``weight`` is the effective (out, in) matrix.

    Default initialisation (see ``reset_parameters``): v i.i.d. normal with variance
    ``gain^2 / (in - 1)``, so each row has expected squared norm ``gain^2`` and each weight entry
    variance ``gain^2 / in``, the same as a Kaiming-normal row; zero bias.
    """

    basis: Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        gain: float = 1.0,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if int(in_features) < 2:
            raise SpecError(
                "LCWLinear needs in_features >= 2 (a one-entry row that sums to 0 is 0), "
                f"got {in_features}"
            )
        if int(out_features) < 1:
            raise SpecError(f"LCWLinear needs out_features >= 1, got {out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        # Not persistent: it is fixed by in_features, so model files need not carry it.
        basis = zero_sum_basis(self.in_features, dtype).to(device)
        self.register_buffer("basis", basis, persistent=False)
        self.v = nn.Parameter(
            torch.empty(self.out_features, self.in_features - 1, device=device, dtype=dtype)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(gain=gain, generator=generator)

    def reset_parameters(self, gain: float = 1.0, generator: torch.Generator | None = None) -> None:
        """v ~ N(0, gain^2 / (in - 1)) entrywise; bias 0.

        Since ``B B^T`` is the projection ``I - 1 1^T / in``, the row ``w = B v`` is distributed as
        a Kaiming-normal row (variance gain^2 / in per entry) with its mean removed and rescaled
        by ``sqrt(in / (in - 1))``: the same expected squared row norm, gain^2.
        """
        std = gain / math.sqrt(self.in_features - 1)
        with torch.no_grad():
            sample = torch.randn(self.v.shape, generator=generator, dtype=torch.float64)
            self.v.copy_(sample * std)
            if self.bias is not None:
                self.bias.zero_()

    @property
    def weight(self) -> Tensor:
        """The effective (out, in) weight ``v B^T``; every row sums to zero.

        The rows of ``v B^T`` sum to zero in exact arithmetic; removing each row's mean as well (a
        no-op in exact arithmetic, and a linear map whose gradient is itself) keeps the sums at
        zero to the working precision rather than to the precision B was rounded to.
        """
        weight = self.v @ self.basis.t()
        return weight - weight.mean(dim=1, keepdim=True)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> LCWLinear:
        # After .to(dtype) / .double() / .cuda(), rebuild B in the new dtype instead of keeping a
        # rounded copy of the old one.
        result = super()._apply(fn, recurse)
        self.basis = zero_sum_basis(self.in_features, self.v.dtype).to(self.v.device)
        return result

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


register_layer(LCWLinear, -1)  # sites after an LCW layer read their units off its last axis
