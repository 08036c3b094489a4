"""Cross products ``sum over batches of m^T m``, accumulated at about 5/8 of a matrix product.

Why: the redundancy figure needs, per site, the cross products of the units' outputs over every
sample. Done as a plain matrix product per batch that costs as many multiply-adds as the layer that
produced them, and nearly doubles a forward pass. The result is symmetric, so only its lower
triangle is computed, one block column at a time: with four block columns, 10 of 16 blocks.
(BLAS ``syrk`` would do half, but PyTorch does not expose it, and a second BLAS library's threads
fight PyTorch's for the cores.) Each batch's products are added inside the matrix product itself
(``addmm_``) to a buffer in the data's precision; the caller folds that buffer into its float64
totals every few batches, which keeps the rounding of the buffer at a few batches' worth.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

BLOCK = 64
"""Narrowest block column: narrower products lose more speed than the triangle saves."""
MAX_BLOCKS = 4


class Gram:
    """A (k, k) buffer accumulating the lower triangle (and diagonal) of m^T m over batches.

    The strict upper triangle holds zeros or partial values: read only the lower triangle.
    """

    def __init__(self) -> None:
        self.buffer: Tensor | None = None
        self._bounds: list[tuple[int, int]] = []

    def fits(self, m: Tensor) -> bool:
        """Whether ``m``'s products can go into the current buffer (same size, dtype, device)."""
        buffer = self.buffer
        return buffer is not None and (buffer.shape[0], buffer.dtype, buffer.device) == (
            m.shape[1],
            m.dtype,
            m.device,
        )

    def _buffer_for(self, m: Tensor) -> Tensor:
        k = m.shape[1]
        buffer = self.buffer
        if not self.fits(m):
            buffer = self.buffer = torch.zeros(k, k, dtype=m.dtype, device=m.device)
            blocks = max(1, min(MAX_BLOCKS, k // BLOCK))
            edges = [round(i * k / blocks) for i in range(blocks + 1)]
            self._bounds = list(itertools.pairwise(edges))
        assert buffer is not None  # fits() holds only for an existing buffer
        return buffer

    def add(self, m: Tensor) -> None:
        """Add ``m^T m`` for a (rows, k) batch ``m``."""
        buffer = self._buffer_for(m)
        for start, end in self._bounds:
            buffer[start:, start:end].addmm_(m[:, start:].T, m[:, start:end])

    def diagonal(self) -> Tensor:
        assert self.buffer is not None
        return torch.diagonal(self.buffer)

    def fold_into(self, total: Tensor) -> None:
        """Add the accumulated products to ``total`` (lower triangle valid) and start again at 0."""
        if self.buffer is not None:
            total.add_(self.buffer)
            self.buffer.zero_()
