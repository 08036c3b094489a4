"""The torch function mode that sees every activation call of a probed forward pass.

``torch.overrides.TorchFunctionMode`` is handed every torch function, ``Tensor`` method and ATen
operator called while it is on the mode stack, whatever module, wrapper or control flow makes
the call. The finder pushes it when the root module's forward starts and pops it when it ends.
Calls of known activations go to the finder; every other call runs as it would, and the few
elementwise ops that keep a tensor's layout (a residual add, dropout) pass on the unit axis of
their input. While ``__torch_function__`` runs, torch takes the mode off the stack, so the
probe's own torch calls are not seen.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from variability.probes.activations import FunctionRule, rule_for_call

_T = torch.Tensor
KEEPS_LAYOUT = frozenset(
    {
        torch.add, torch.sub, torch.mul, torch.div,
        _T.add, _T.add_, _T.sub, _T.sub_, _T.mul, _T.mul_, _T.div, _T.div_,
        _T.__add__, _T.__radd__, _T.__iadd__, _T.__sub__, _T.__rsub__, _T.__isub__,
        _T.__mul__, _T.__rmul__, _T.__imul__, _T.__truediv__, _T.__itruediv__,
        F.dropout, _T.contiguous, _T.clone,
    }
)  # fmt: skip
"""Ops whose output has the layout of their (same-shaped) input."""


class CallObserver(Protocol):
    """What the mode reports to (the site finder, finder.py)."""

    def on_call(self, func: Any, rule: FunctionRule, args: Any, kwargs: dict[str, Any]) -> Any:
        """Run an activation call (measuring it) and return its result."""

    def follow(self, args: Any, result: Any) -> None:
        """``result`` has the layout of the tensor it was computed from."""


class ActivationMode(TorchFunctionMode):
    """Hands activation calls to the finder; runs everything else untouched."""

    def __init__(self, finder: CallObserver) -> None:
        super().__init__()
        self.finder = finder

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        rule = rule_for_call(func)
        if rule is not None:
            return self.finder.on_call(func, rule, args, kwargs)
        result = func(*args, **kwargs)
        if func in KEEPS_LAYOUT:
            self.finder.follow(args, result)
        return result
