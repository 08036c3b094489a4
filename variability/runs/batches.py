"""The order of training batches: a function of (seed, step) alone, so resuming needs no state."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class BatchOrder:
    """Training batches as a function of (seed, step): step s takes the rows at positions
    ``[(s-1) B, s B)`` of an endless sequence of epochs, each a fresh permutation of the training
    set drawn from ``(seed, epoch)``. No state, so a resumed run needs none."""

    def __init__(self, rows: int, batch_size: int, seed: int, device: torch.device) -> None:
        self.rows = rows
        self.batch_size = min(batch_size, rows)
        self.seed = seed
        self.device = device
        self._epoch = -1
        self._order: Tensor | None = None

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
            self._order = torch.from_numpy(order).to(self.device)
            self._epoch = epoch
        assert self._order is not None
        return self._order

    def indices(self, step: int) -> Tensor:
        start = (step - 1) * self.batch_size
        epoch, offset = divmod(start, self.rows)
        end = offset + self.batch_size
        order = self._permutation(epoch)
        if end <= self.rows:
            return order[offset:end]
        head = order[offset:]
        return torch.cat([head, self._permutation(epoch + 1)[: end - self.rows]])


class IndependentBatches:
    """Training batches drawn afresh at every step: step s takes ``batch_size`` distinct rows,
    uniformly at random, from a generator seeded by ``(seed, s)`` alone (the Han paper's
    sampling: no epochs, each step's rows without replacement). Stateless, like BatchOrder."""

    _STREAM = 7  # keeps these draws apart from BatchOrder's (seed, epoch) streams

    def __init__(self, rows: int, batch_size: int, seed: int, device: torch.device) -> None:
        self.rows = rows
        self.batch_size = min(batch_size, rows)
        self.seed = seed
        self.device = device

    def indices(self, step: int) -> Tensor:
        rng = np.random.default_rng([self.seed, self._STREAM, step])
        chosen = rng.choice(self.rows, size=self.batch_size, replace=False)
        return torch.from_numpy(chosen).to(self.device)


SAMPLINGS = ("epochs", "independent")
"""How training batches are drawn: "epochs" (BatchOrder: a fresh permutation per pass over the
training set) or "independent" (IndependentBatches: a fresh random subset per step)."""


def batch_sampler(
    sampling: str, rows: int, batch_size: int, seed: int, device: torch.device
) -> BatchOrder | IndependentBatches:
    if sampling == "epochs":
        return BatchOrder(rows, batch_size, seed, device)
    if sampling == "independent":
        return IndependentBatches(rows, batch_size, seed, device)
    raise ValueError(f"unknown sampling {sampling!r}; known: {', '.join(SAMPLINGS)}")
