"""Scratch memory for the elementwise intermediates of a probe's reductions.

Why: reducing a batch takes an elementwise intermediate or two the size of the site's activation
(``a - c``, active flags). Allocated afresh they cost an allocation, and often fresh pages, per
op, site and batch. A site's reductions run one after another, so one buffer per thread, dtype
and device, as large as the largest site needs, serves every site. The probe drops the buffer
when it is detached.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor


class Workspace:
    """Hands out uninitialised, contiguous scratch tensors ("slabs") shaped like a given one."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}
        self._views: dict[tuple, tuple[Tensor, ...]] = {}

    def slabs(self, x: Tensor, count: int) -> tuple[Tensor, ...]:
        """``count`` scratch tensors of x's shape, dtype and device."""
        thread, dtype, device = threading.get_ident(), x.dtype, x.device
        key = (thread, dtype, device, x.shape, count)
        views = self._views.get(key)
        if views is not None:
            return views
        size = count * x.numel()
        buffer = self._buffers.get(key[:3])
        if buffer is None or buffer.numel() < size:
            buffer = self._buffers[key[:3]] = torch.empty(size, dtype=dtype, device=device)
            self._views = {k: v for k, v in self._views.items() if k[:3] != key[:3]}
        views = self._views[key] = buffer[:size].view(count, *x.shape).unbind(0)
        return views

    def clear(self) -> None:
        self._buffers.clear()
        self._views.clear()


def slabs_like(workspace: Workspace | None, x: Tensor, count: int) -> tuple[Tensor, ...]:
    """Scratch slabs from ``workspace``, or fresh ones without."""
    if workspace is None:
        return torch.empty((count, *x.shape), dtype=x.dtype, device=x.device).unbind(0)
    return workspace.slabs(x, count)
