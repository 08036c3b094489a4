"""One batch's per-unit rows: written at once, checked with one scalar, added in one operation.

Why: a hook runs for every site and batch, and at the sizes of real layers each PyTorch call
costs microseconds of dispatch whatever it computes. So a batch's per-unit figures (means of
``a - c``, ``(a - c)^2``, ``z``, ``z^2`` and the active count) are stacked into one small buffer
in the data's precision, checked for NaN/Inf with a single sum, and added to the float64 totals
by one fused multiply-add that weights the mean rows by the batch's sample count.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class BatchRows:
    """A (rows, units) buffer for one batch; row ``count_row`` holds a count, the others means."""

    def __init__(self, rows: int, units: int, count_row: int, device: torch.device | str) -> None:
        self._shape = (rows, units)
        self._count_row = count_row
        self._use(torch.zeros(rows, units, dtype=torch.float32, device=device))

    def _use(self, buffer: Tensor) -> None:
        self.buffer = buffer
        self.rows = buffer.unbind(0)
        self._blocks: dict[tuple[int, int], Tensor] = {}
        self._weights: dict[tuple[int, int, int], Tensor] = {}

    def prepare(self, x: Tensor) -> None:
        """Keep the buffer in ``x``'s precision and on its device."""
        buffer = self.buffer
        if buffer.dtype != x.dtype or buffer.device != x.device:
            self._use(torch.zeros(self._shape, dtype=x.dtype, device=x.device))

    def to(self, device: torch.device | str) -> None:
        self._use(self.buffer.to(device))

    def block(self, first: int, last: int) -> Tensor:
        """Rows ``first:last`` (a cached view)."""
        block = self._blocks.get((first, last))
        if block is None:
            block = self._blocks[first, last] = self.buffer[first:last]
        return block

    def write(self, first: int, values: list[Tensor]) -> None:
        """Rows ``first``, ``first + 1``, ... from per-unit vectors, in one copy."""
        torch.stack(values, out=self.block(first, first + len(values)))

    def finite(self, first: int, last: int) -> bool:
        """False if rows ``first:last`` hold a NaN or an Inf (as they do if the data did)."""
        return math.isfinite(self.block(first, last).sum().item())

    def add_to(self, totals: Tensor, first: int, last: int, samples: int) -> None:
        """``totals[first:last] +=`` the rows, mean rows times ``samples``, the count row as is."""
        key = (first, last, samples)
        weights = self._weights.get(key)
        if weights is None:
            column = [
                1.0 if row == self._count_row else float(samples) for row in range(first, last)
            ]
            weights = torch.tensor(column, dtype=self.buffer.dtype, device=self.buffer.device)
            weights = self._weights[key] = weights.unsqueeze(1)
            if len(self._weights) > 64:  # batch sizes vary: keep only recent weights
                self._weights = {key: weights}
        totals.addcmul_(self.block(first, last), weights)
