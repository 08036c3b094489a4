"""Wrappers the probe looks through: ``torch.compile``, ``nn.DataParallel``, DDP.

Why: a wrapper's own forward is not the network. ``DataParallel`` and
``DistributedDataParallel`` call ``.module``; the probe hooks that, so site names are the same
as for the bare model (and across ranks). A ``torch.compile``'d module runs code the hooks and
the torch function mode cannot see into; while a probe is attached its forward runs eagerly
(``torch.compiler.set_stance("force_eager")``), so every site is measured, at eager speed.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field

import torch
from torch import nn

COMPILED_NOTE = (
    "torch.compile'd model: probed its original module eagerly (compiled code hides its "
    "activations), so the probed forward passes ran at eager speed"
)


def _compiled_type() -> type | None:
    """torch.compile's wrapper class, if torch.compile has been used in this process: importing
    torch._dynamo to find out would take longer than a small model's whole probe."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return getattr(eval_frame, "OptimizedModule", None)


def _parallel_types() -> tuple[type, ...]:
    return (nn.DataParallel, nn.parallel.DistributedDataParallel)


@dataclass
class Unwrapped:
    """The network inside the wrappers, and what the probe must do about them."""

    module: nn.Module
    compiled: bool = False
    notes: list[str] = field(default_factory=list)


def unwrap(model: nn.Module) -> Unwrapped:
    """Strip compile and data-parallel wrappers (in any nesting) from ``model``."""
    compiled_type = _compiled_type()
    parallel = _parallel_types()
    module, compiled = model, False
    while True:
        if compiled_type is not None and isinstance(module, compiled_type):
            module, compiled = _inner(module, "_orig_mod"), True
        elif isinstance(module, parallel):
            module = _inner(module, "module")
        else:
            break
    if compiled_type is not None and not compiled:
        compiled = any(isinstance(m, compiled_type) for m in module.modules())
    return Unwrapped(module, compiled, [COMPILED_NOTE] if compiled else [])


def _inner(wrapper: nn.Module, attribute: str) -> nn.Module:
    inner = getattr(wrapper, attribute)
    assert isinstance(inner, nn.Module)  # what compile and the data-parallel wrappers hold
    return inner


class EagerStance:
    """``torch.compiler.set_stance("force_eager")`` from one hook to another: entered before the
    outermost module's forward, left after it (on every exit path: the closing hook is
    registered with ``always_call``)."""

    def __init__(self) -> None:
        self._stance: contextlib.AbstractContextManager[object] | None = None

    def enter(self) -> None:
        if self._stance is None:
            self._stance = torch.compiler.set_stance("force_eager")

    def leave(self) -> None:
        stance, self._stance = self._stance, None
        if stance is not None:
            stance.__exit__(None, None, None)
