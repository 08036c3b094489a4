"""Known nonlinearities and the rule that says when a unit is *active*.

DEFINITIONS.md: a unit is active at a sample when ``|phi'(z)| >= tau * max|phi'|``. Each known
activation turns that into a cheap test on the pre-activation ``z``. The registry is open: a project
can register its own module types (``register_activation``) or functions (``register_function``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from variability.probes.intervals import (
    ABOVE_ZERO,
    EVERYWHERE,
    Interval,
    Intervals,
    active_set,
    derivative_intervals,
)

ActiveTest = Callable[[Tensor, float], Tensor]
"""``(z, tau) -> bool tensor`` of the same shape as ``z``: True where the unit is active."""

PreActivation = Callable[[nn.Module, tuple[Any, ...], Any], Tensor]
"""``(module, inputs, output) -> z``: how to read the pre-activation of a module site."""


@dataclass(frozen=True)
class Activation:
    """How one nonlinearity decides which (unit, sample) pairs are active.

    ``count_from_output`` is an optional shortcut used when every value is finite: a map from the
    output ``a`` to a float tensor of 0s and 1s that equals ``active(z, tau)`` (for ReLU and Abs,
    ``a != 0`` exactly when ``z`` is active, whatever tau is). It saves one pass over the data.
    ``piece``: for a piecewise-linear nonlinearity whose linear pieces are not told apart by
    ``active`` (the absolute value is active on both sides of 0), which piece ``z`` lies on;
    pieces per line counts changes of it. None: the active pattern marks the pieces.
    ``intervals``: ``tau -> Intervals`` when the active set is a union of intervals of ``z``
    (intervals.py; every rule of docs/figures.md but PReLU): the compiled kernel then counts
    active values in its one pass over ``z``.
    """

    name: str
    active: ActiveTest
    preactivation: PreActivation | None = None
    count_from_output: Callable[[Tensor], Tensor] | None = None
    piece: Callable[[Tensor], Tensor] | None = None
    intervals: Callable[[float], Intervals] | None = None

    def read_preactivation(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Tensor:
        if self.preactivation is not None:
            return self.preactivation(module, inputs, output)
        return inputs[0]


ModuleRule = Activation | Callable[[nn.Module], Activation]
FunctionRule = Callable[[tuple[Any, ...], Mapping[str, Any]], tuple[Activation, bool]]
"""``(args, kwargs) -> (activation, inplace)`` for a functional call (seen while the model runs,
or recorded by torch.fx)."""

_MODULE_RULES: dict[type[nn.Module], ModuleRule] = {}
_MODULE_RULES_BY_NAME: dict[str, ModuleRule] = {}
_FUNCTION_RULES: dict[Any, FunctionRule] = {}
_METHOD_RULES: dict[str, FunctionRule] = {}
_CALL_RULES: dict[Any, FunctionRule] = {}
"""Every callable the torch function mode may be handed for an activation call: functions,
``Tensor`` methods (``x.relu()`` arrives as ``Tensor.relu``) and ATen operators."""
_LABELS: dict[Any, str] = {}


M = TypeVar("M", bound=nn.Module)


def register_activation(module_type: type[M], rule: Activation | Callable[[M], Activation]) -> None:
    """Make ``module_type`` a probe site, with ``rule`` (an Activation, or module -> Activation)."""
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_activation needs an nn.Module subclass, got {module_type!r}")
    # A rule is only called with instances of its own class (activation_for_module looks it up
    # along the instance's class hierarchy), so the narrower parameter type is safe.
    _MODULE_RULES[module_type] = cast(ModuleRule, rule)


def register_function(function: Any, rule: FunctionRule | Activation) -> None:
    """Make calls of ``function`` (or of the Tensor method named so, if a str) probe sites."""
    if isinstance(rule, Activation):
        fixed = rule

        def rule(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Activation, bool]:
            return fixed, bool(kwargs.get("inplace", False))

    if isinstance(function, str):
        _METHOD_RULES[function] = rule
        method = getattr(torch.Tensor, function, None)
        if method is not None:
            _CALL_RULES[method] = rule
            _LABELS[method] = function.rstrip("_")
    else:
        _FUNCTION_RULES[function] = rule
        _CALL_RULES[function] = rule
        _LABELS[function] = _call_name(function)


def register_activation_class(qualified_name: str, rule: ModuleRule) -> None:
    """Make the module class named ``package.module.Class`` a probe site without importing it
    (transformers' activation modules: the probe must not depend on transformers)."""
    _MODULE_RULES_BY_NAME[qualified_name] = rule


def _call_name(function: Any) -> str:
    name = getattr(function, "_opname", None) or getattr(function, "__name__", str(function))
    return str(name).removeprefix("special_").rstrip("_")


def activation_for_module(module: nn.Module) -> Activation | None:
    """The rule for a module, found along its class hierarchy; None if not an activation."""
    for cls in type(module).__mro__:
        rule = _MODULE_RULES.get(cls)
        if rule is None and _MODULE_RULES_BY_NAME:
            rule = _MODULE_RULES_BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
        if rule is not None:
            return rule if isinstance(rule, Activation) else rule(module)
    return None


def rule_for_call(function: Any) -> FunctionRule | None:
    """The rule of a callable handed to the torch function mode; None for every other call."""
    return _CALL_RULES.get(function)


def call_label(function: Any) -> str:
    """The name a functional site is called by: ``relu`` for F.relu, x.relu_() and aten.relu."""
    return _LABELS.get(function) or _call_name(function)


def known_call_labels() -> list[str]:
    return sorted(set(_LABELS.values()))


def activation_for_call(
    op: str, target: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Activation, bool] | None:
    """The rule for a torch.fx node (call_function or call_method), with its in-place flag."""
    if op == "call_function":
        rule = _FUNCTION_RULES.get(target)
    elif op == "call_method":
        rule = _METHOD_RULES.get(target)
    else:
        return None
    return None if rule is None else rule(args, kwargs)


def known_module_names() -> list[str]:
    return sorted(cls.__name__ for cls in _MODULE_RULES)


def _first(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The tensor an activation is applied to: its first argument, ``input=`` or ``self=``."""
    if args:
        return args[0]
    return kwargs.get("input", kwargs.get("self"))


preactivation_of_call = _first


def known_function_names() -> list[str]:
    names = {getattr(f, "__name__", str(f)) for f in _FUNCTION_RULES}
    names |= {f"Tensor.{m}" for m in _METHOD_RULES}
    return sorted(names)


def is_inplace_module(module: nn.Module) -> bool:
    return bool(getattr(module, "inplace", False))


# --- the rules --------------------------------------------------------------------------------
# Each rule gives its active set as intervals of z (intervals.py); the active test is made from
# them, so the compiled kernel and PyTorch count the same values.


def _by_intervals(name: str, intervals: Callable[[float], Intervals], **extra: Any) -> Activation:
    cached = functools.lru_cache(maxsize=32)(intervals)
    return Activation(name, active_set(cached), intervals=cached, **extra)


def _sign_side(z: Tensor) -> Tensor:
    """The linear piece of |z| (and of Han's |Hx + b|): slope -1 below 0, +1 above."""
    return z > 0


_BELOW_ZERO = Interval(-math.inf, 0.0, high_closed=False)
_NOWHERE: Intervals = ()

# a >= 0 for ReLU and Abs outputs, so sign(a) is 1 exactly where the unit is active. (The probe
# recognises torch.sign and writes its flags into scratch memory.)
RELU = _by_intervals("relu", lambda tau: (ABOVE_ZERO,), count_from_output=torch.sign)
ABS = _by_intervals(
    "abs", lambda tau: (_BELOW_ZERO, ABOVE_ZERO), count_from_output=torch.sign, piece=_sign_side
)


def _symmetric_window(name: str, half_width: Callable[[float], float]) -> Activation:
    """Activations whose slope falls with |z| (sigmoid, tanh): active iff |z| <= half_width(tau)."""
    return _by_intervals(name, lambda tau: (Interval(-half_width(tau), half_width(tau)),))


def sigmoid_half_width(tau: float) -> float:
    """sigmoid' = s(1-s) <= 1/4; s(1-s) >= tau/4 iff |z| <= logit((1 + sqrt(1 - tau)) / 2)."""
    if tau >= 1.0:
        return 0.0
    s = (1.0 + math.sqrt(1.0 - tau)) / 2.0
    return math.log(s / (1.0 - s))


def tanh_half_width(tau: float) -> float:
    """tanh' = 1 - tanh^2 <= 1; >= tau iff |z| <= atanh(sqrt(1 - tau))."""
    if tau >= 1.0:
        return 0.0
    return math.atanh(math.sqrt(1.0 - tau))


SIGMOID = _symmetric_window("sigmoid", sigmoid_half_width)
TANH = _symmetric_window("tanh", tanh_half_width)


def _leaky(slope: float, name: str = "leaky_relu") -> Activation:
    """phi' is 1 for z > 0 and ``slope`` below: the negative side is active iff |slope| is large."""
    peak = max(1.0, abs(slope))

    def intervals(tau: float) -> Intervals:
        right = tau * peak <= 1.0
        left = abs(slope) >= tau * peak
        if right and left:
            return (EVERYWHERE,)
        if left:
            return (Interval(-math.inf, 0.0),)
        return (ABOVE_ZERO,) if right else _NOWHERE

    return _by_intervals(name, intervals)


def _prelu(module: nn.PReLU) -> Activation:
    """PReLU: like leaky ReLU with a learned slope per channel (unit axis 1) or one shared slope."""
    weight = module.weight.detach()

    def active(z: Tensor, tau: float) -> Tensor:
        slope = weight.to(z.device, z.dtype).abs()
        peak = torch.clamp(slope, min=1.0)
        negative_active = slope >= tau * peak
        if negative_active.numel() > 1 and z.dim() >= 2:
            shape = [1] * z.dim()
            shape[1] = negative_active.numel()
            negative_active = negative_active.view(shape)
        return (z > 0) | ((z <= 0) & negative_active)

    return Activation("prelu", active)


def _exponential_left(name: str, alpha: float, scale: float = 1.0) -> Activation:
    """ELU / SELU: phi' = scale for z > 0, scale * alpha * e^z below; peak scale * max(1, alpha)."""
    peak = max(1.0, alpha)

    def intervals(tau: float) -> Intervals:
        found = [ABOVE_ZERO] if tau * peak <= 1.0 else []
        if alpha > 0 and tau > 0:
            found.append(Interval(math.log(tau * peak / alpha), 0.0))
        elif alpha > 0:
            found.append(Interval(-math.inf, 0.0))
        return tuple(found)

    return _by_intervals(name, intervals)


def _celu(alpha: float) -> Activation:
    """CELU: phi' = 1 for z > 0, exp(z / alpha) below; peak 1."""

    def intervals(tau: float) -> Intervals:
        if tau <= 0:
            return (EVERYWHERE,)
        return (ABOVE_ZERO, Interval(alpha * math.log(tau), math.inf))

    return _by_intervals("celu", intervals)


def _window(name: str, low: float, high: float) -> Activation:
    """Hardtanh, ReLU6, Hardsigmoid: constant slope inside (low, high), zero outside."""
    return _by_intervals(
        name, lambda tau: (Interval(low, high, low_closed=False, high_closed=False),)
    )


def _hardswish_intervals(tau: float) -> Intervals:
    # phi' = 0 below -3, (2z + 3) / 6 on (-3, 3), 1 above 3; the peak |phi'| is 1.5 (at z -> 3-).
    # Inside (-3, 3): |2z + 3| >= 9 tau, that is z <= (-9 tau - 3) / 2 or z >= (9 tau - 3) / 2.
    found = [
        Interval(-3.0, (-9 * tau - 3) / 2, low_closed=False),
        Interval((9 * tau - 3) / 2, 3.0, high_closed=False),
    ]
    if tau * 1.5 <= 1.0:
        found.append(Interval(3.0, math.inf))
    return tuple(found)


def _softplus(beta: float, threshold: float) -> Activation:
    """Softplus: phi' = sigmoid(beta z) (exactly 1 above threshold / beta); peak 1."""
    if beta <= 0:

        def active(z: Tensor, tau: float) -> Tensor:
            if tau >= 1.0:
                return beta * z > threshold
            return beta * z >= math.log(tau / (1.0 - tau))

        return Activation("softplus", active)

    def intervals(tau: float) -> Intervals:
        if tau >= 1.0:
            return (Interval(threshold / beta, math.inf, low_closed=False),)
        if tau <= 0.0:
            return (EVERYWHERE,)
        return (Interval(math.log(tau / (1.0 - tau)) / beta, math.inf),)

    return _by_intervals("softplus", intervals)


def _from_derivative(name: str, derivative: Callable[[Tensor], Tensor]) -> Activation:
    """Smooth activations with a non-monotone slope (GELU, SiLU, Mish): the intervals where
    |phi'| >= tau * max|phi'|, found once per tau from the exact derivative (intervals.py).

    The search starts at the first use: it takes about a second per activation, which a probe
    of a model without these activations need not pay."""
    search = functools.cache(lambda: derivative_intervals(derivative))

    def intervals(tau: float) -> Intervals:
        return search()(tau)

    return Activation(name, active_set(intervals), intervals=intervals)


def _gelu_slope(z: Tensor) -> Tensor:
    # d/dz [z Phi(z)] = Phi(z) + z phi(z)
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _gelu_tanh_slope(z: Tensor) -> Tensor:
    # d/dz [z/2 (1 + tanh(k (z + 0.044715 z^3)))], k = sqrt(2 / pi)
    k = math.sqrt(2.0 / math.pi)
    t = torch.tanh(k * (z + 0.044715 * z**3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * z * z)


def _silu_slope(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _mish_slope(z: Tensor) -> Tensor:
    t = torch.tanh(F.softplus(z))
    return t + z * (1.0 - t * t) * torch.sigmoid(z)


GELU = _from_derivative("gelu", _gelu_slope)
GELU_TANH = _from_derivative("gelu", _gelu_tanh_slope)
SILU = _from_derivative("silu", _silu_slope)
MISH = _from_derivative("mish", _mish_slope)
HARDSWISH = _by_intervals("hardswish", _hardswish_intervals)

register_activation(nn.ReLU, RELU)
register_activation(nn.LeakyReLU, lambda m: _leaky(m.negative_slope))
register_activation(nn.PReLU, _prelu)
register_activation(nn.ReLU6, _window("relu6", 0.0, 6.0))
register_activation(nn.ELU, lambda m: _exponential_left("elu", m.alpha))
register_activation(nn.SELU, _exponential_left("selu", 1.6732632423543772))
register_activation(nn.CELU, lambda m: _celu(m.alpha))
register_activation(nn.GELU, lambda m: GELU_TANH if m.approximate == "tanh" else GELU)
register_activation(nn.SiLU, SILU)
register_activation(nn.Mish, MISH)
register_activation(nn.Softplus, lambda m: _softplus(m.beta, m.threshold))
register_activation(nn.Sigmoid, SIGMOID)
register_activation(nn.Tanh, TANH)
register_activation(nn.Hardtanh, lambda m: _window("hardtanh", m.min_val, m.max_val))
register_activation(nn.Hardswish, HARDSWISH)
register_activation(nn.Hardsigmoid, _window("hardsigmoid", -3.0, 3.0))


def _arg(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any
) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _fixed(activation: Activation, inplace_index: int | None = 1) -> FunctionRule:
    def rule(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Activation, bool]:
        inplace = False
        if inplace_index is not None:
            inplace = bool(_arg(args, kwargs, inplace_index, "inplace", False))
        return activation, inplace

    return rule


def _fixed_inplace(activation: Activation) -> FunctionRule:
    return lambda args, kwargs: (activation, True)


for _f in (F.relu, torch.relu):
    register_function(_f, _fixed(RELU))
for _f in (F.relu_, torch.relu_):
    register_function(_f, _fixed_inplace(RELU))
register_function(torch.abs, _fixed(ABS, None))
for _f in (torch.sigmoid, F.sigmoid):
    register_function(_f, _fixed(SIGMOID, None))
for _f in (torch.tanh, F.tanh):
    register_function(_f, _fixed(TANH, None))


def _gelu_rule(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Activation, bool]:
    return (GELU_TANH if _arg(args, kwargs, 1, "approximate", "none") == "tanh" else GELU), False


register_function(F.gelu, _gelu_rule)
register_function(torch.special.expit, _fixed(SIGMOID, None))
for _f, _act in ((torch.sigmoid_, SIGMOID), (torch.tanh_, TANH), (torch.abs_, ABS)):
    register_function(_f, _fixed_inplace(_act))
register_function(F.silu, _fixed(SILU, 1))
register_function(F.mish, _fixed(MISH, 1))
register_function(F.hardswish, _fixed(HARDSWISH, 1))
register_function(F.relu6, _fixed(_window("relu6", 0.0, 6.0), 1))
register_function(F.hardsigmoid, _fixed(_window("hardsigmoid", -3.0, 3.0), 1))
register_function(
    F.leaky_relu,
    lambda a, k: (_leaky(_arg(a, k, 1, "negative_slope", 0.01)), bool(_arg(a, k, 2, "inplace", 0))),
)
register_function(
    F.elu,
    lambda a, k: (
        _exponential_left("elu", _arg(a, k, 1, "alpha", 1.0)),
        bool(_arg(a, k, 2, "inplace", False)),
    ),
)
SELU = _exponential_left("selu", 1.6732632423543772)
register_function(F.selu, _fixed(SELU, 1))
register_function(torch.selu, _fixed(SELU, None))
register_function(torch.selu_, _fixed_inplace(SELU))
register_function(
    F.elu_, lambda a, k: (_exponential_left("elu", _arg(a, k, 1, "alpha", 1.0)), True)
)
register_function(F.leaky_relu_, lambda a, k: (_leaky(_arg(a, k, 1, "negative_slope", 0.01)), True))
register_function(
    F.hardtanh_,
    lambda a, k: (
        _window("hardtanh", _arg(a, k, 1, "min_val", -1.0), _arg(a, k, 2, "max_val", 1.0)),
        True,
    ),
)
register_function(torch.celu, lambda a, k: (_celu(_arg(a, k, 1, "alpha", 1.0)), False))
register_function(torch.celu_, lambda a, k: (_celu(_arg(a, k, 1, "alpha", 1.0)), True))
register_function(
    F.celu,
    lambda a, k: (_celu(_arg(a, k, 1, "alpha", 1.0)), bool(_arg(a, k, 2, "inplace", False))),
)
register_function(
    F.hardtanh,
    lambda a, k: (
        _window("hardtanh", _arg(a, k, 1, "min_val", -1.0), _arg(a, k, 2, "max_val", 1.0)),
        bool(_arg(a, k, 3, "inplace", False)),
    ),
)
register_function(
    F.softplus,
    lambda a, k: (_softplus(_arg(a, k, 1, "beta", 1.0), _arg(a, k, 2, "threshold", 20.0)), False),
)
for _m, _act in (
    ("relu", RELU),
    ("abs", ABS),
    ("absolute", ABS),
    ("sigmoid", SIGMOID),
    ("tanh", TANH),
):
    register_function(_m, _fixed(_act, None))
    register_function(_m + "_", _fixed_inplace(_act))
register_function(torch.absolute, _fixed(ABS, None))


# ATen operators: what torch.export programs (.pt2) and other ATen-level graphs call.
_aten = torch.ops.aten
for _op, _act in (
    (_aten.relu.default, RELU),
    (_aten.abs.default, ABS),
    (_aten.sigmoid.default, SIGMOID),
    (_aten.tanh.default, TANH),
    (_aten.silu.default, SILU),
    (_aten.mish.default, MISH),
    (_aten.hardswish.default, HARDSWISH),
):
    register_function(_op, _fixed(_act, None))
for _op, _act in ((_aten.relu_.default, RELU), (_aten.abs_.default, ABS)):
    register_function(_op, _fixed_inplace(_act))
register_function(
    _aten.gelu.default,
    lambda a, k: (GELU_TANH if k.get("approximate", "none") == "tanh" else GELU, False),
)
register_function(
    _aten.leaky_relu.default,
    lambda a, k: (_leaky(_arg(a, k, 1, "negative_slope", 0.01)), False),
)
register_function(
    _aten.hardtanh.default,
    lambda a, k: (
        _window("hardtanh", _arg(a, k, 1, "min_val", -1.0), _arg(a, k, 2, "max_val", 1.0)),
        False,
    ),
)
register_function(
    _aten.elu.default,
    lambda a, k: (_exponential_left("elu", _arg(a, k, 1, "alpha", 1.0)), False),
)


# transformers' activation modules, named so the probe never imports transformers. Each is one
# site named by its module path; the tanh inside NewGELUActivation's formula is not a site of its
# own.
for _name, _rule in (
    ("GELUActivation", GELU),
    ("NewGELUActivation", GELU_TANH),
    ("GELUTanh", GELU_TANH),
    ("FastGELUActivation", GELU_TANH),
    ("SiLUActivation", SILU),
):
    register_activation_class(f"transformers.activations.{_name}", _rule)
