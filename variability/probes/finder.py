"""Finding probe sites while the model runs: activation modules by their hooks, and every call
of a known activation function by a torch function mode.

Why at run time, not by tracing: a trace sees one path through ``forward``; Python control
flow, wrapper modules, data-dependent code and the fast paths of ``nn.TransformerEncoderLayer``
defeat it. Here nothing is traced and no ``forward`` is replaced (except a torch.export
program's, see functional.py): the model runs as it always does, and

- a forward pre-hook and an always-called forward hook on every module keep the stack of modules
  being run, so a call is named after the module whose forward made it;
- an ``ActivationMode`` (mode.py) is pushed when the root module's forward starts and popped when
  it ends, so it sees every torch function call of that forward, and of nothing else;
- an activation module is one site, measured by its own hooks; the function call inside it
  (``nn.GELU`` calls ``F.gelu``) is not a second one;
- the layers whose output has a known unit axis (producer_axis in layout.py) record their
  outputs, so a site reads its units off the layer that made its input; the same record names
  that layer (``Call.producer``), which the remedy rescales.

Names (docs/probes.md): a module site is named by its path; a functional call by the enclosing
module's path and the function (``blocks.0.relu``), or by the path alone when that module has no
submodules (a wrapper such as ``intermediate_act_fn`` whose forward calls ``F.gelu``). Each name
has a counter per forward pass; results add ``[k]`` to names that ran more than once.

Per-forward state is thread-local: ``nn.DataParallel`` runs replicas (sharing these hooks) in
threads, and a torch function mode is per thread.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from variability.probes.activations import FunctionRule, call_label, preactivation_of_call
from variability.probes.layout import producer_axis
from variability.probes.mode import ActivationMode
from variability.probes.sites import Selection, Site
from variability.probes.wrappers import EagerStance

NOT_FLOAT = "not a floating-point tensor"
SCALAR = "a 0-dimensional tensor"
PARAMETER = "a parameter, not an activation"
NOT_SELECTED = "not selected by sites="


@dataclass(frozen=True)
class Call:
    """One call of a site in one forward pass: the ``number``-th of its name, the unit axis of
    its input as the layer that made it says (None: the shape rule decides), and that layer's
    module path (None: no such layer made it)."""

    site: Site
    number: int
    axis: int | None
    producer: str | None = None


class Visitor(Protocol):
    """What the finder tells the probe (or pieces per line) about each call."""

    def before(self, call: Call, z: Tensor) -> None:
        """An in-place site's pre-activation, before the op overwrites it."""

    def after(self, call: Call, z: Tensor | None, a: Any) -> None:
        """A site's output, with its pre-activation unless ``before`` had it (or it has none)."""

    def output(self, a: Any, axis: int | None) -> None:
        """The root module's output."""

    def unprobed(self, name: str, function: str, reason: str) -> None:
        """An activation call seen but not measured, and why."""


@dataclass
class _Frame:
    path: str
    leaf: bool
    is_site: bool  # an activation module site: calls inside it are that site


@dataclass
class _Forward:
    """What one forward pass of the root module has seen so far (one per thread)."""

    mode: ActivationMode
    stack: list[_Frame] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    made: dict[int, tuple[weakref.ref, int, str | None]] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)  # in-place module sites' call numbers

    def next_number(self, name: str) -> int:
        number = self.counters.get(name, 0)
        self.counters[name] = number + 1
        return number

    def made_by(self, x: Any) -> tuple[int | None, str | None]:
        """The unit axis of ``x`` and the path of the layer that made it, where known."""
        entry = self.made.get(id(x))
        if entry is not None and entry[0]() is x:
            return entry[1], entry[2]
        return None, None

    def axis_of(self, x: Any) -> int | None:
        return self.made_by(x)[0]

    def record(self, x: Any, axis: int | None, producer: str | None = None) -> None:
        if axis is not None and isinstance(x, Tensor):
            self.made[id(x)] = (weakref.ref(x), axis, producer)


class SiteFinder:
    """Attach to ``root`` (the unwrapped model; ``outer`` is what the user calls) and report every
    call of a selected site to ``visitor``, in the order the model runs them."""

    def __init__(
        self,
        outer: nn.Module,
        root: nn.Module,
        selection: Selection,
        visitor: Visitor,
        *,
        compiled: bool = False,
    ) -> None:
        self.outer = outer
        self.root = root
        self.selection = selection
        self.visitor = visitor
        self._compiled = compiled
        self._local = threading.local()
        self._handles: list[Any] = []
        self._calls: dict[tuple[str, int, int | None, str | None], Call] = {}
        self._function_sites: dict[tuple[str, str, Any], Site] = {}
        self._stance = EagerStance()
        self._saved_forward: Any = None
        self._had_instance_forward = False
        self.attached = False

    # --- lifecycle -----------------------------------------------------------------------------

    def attach(self) -> None:
        if self.attached:
            return
        self.attached = True
        try:
            traced = self.selection.traced
            if traced is not None:
                self._had_instance_forward = "forward" in self.root.__dict__
                self._saved_forward = self.root.__dict__.get("forward")
                self.root.forward = traced.forward
            if self._compiled:
                self._hook(self.outer, self._stance_on, self._stance_off)
            self._hook(self.root, self._root_pre, self._root_post)
            for path, module in _hookable(self.selection.hooked):
                if module is self.root or (traced is not None and module is traced):
                    continue
                self._hook_module(path, module)
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        """Remove every hook, leave the mode and the eager stance, restore ``forward``."""
        if not self.attached:
            return
        try:
            for handle in self._handles:
                handle.remove()
        finally:
            self._handles.clear()
            self._end_forward()
            self._stance.leave()
            if self.selection.traced is not None:
                if self._had_instance_forward:
                    self.root.forward = self._saved_forward
                else:
                    self.root.__dict__.pop("forward", None)
            self.attached = False

    def _hook(self, module: nn.Module, pre: Callable, post: Callable) -> None:
        self._handles.append(module.register_forward_pre_hook(pre))
        self._handles.append(module.register_forward_hook(post, always_call=True))

    def _stance_on(self, module: nn.Module, args: Any) -> None:
        self._stance.enter()

    def _stance_off(self, module: nn.Module, args: Any, output: Any) -> None:
        self._stance.leave()

    # --- the root: one forward pass ------------------------------------------------------------

    def _root_pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._end_forward()  # a forward that a BaseException (Ctrl-C) cut short
        mode = ActivationMode(self)
        forward = _Forward(mode)
        self._local.forward = forward
        site = self.selection.modules.get(module)
        forward.stack.append(_Frame("", _is_leaf(module), _is_activation(site)))
        if site is not None:
            self._site_pre(site, module, args)
        mode.__enter__()

    def _root_post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        forward = self._end_forward()
        if forward is None or output is None:
            return
        with torch._C.DisableTorchFunction():
            forward.record(output, producer_axis(module), "")
            site = self.selection.modules.get(module)
            if site is not None:
                self._site_post(forward, site, module, args, output)
            self.visitor.output(output, forward.axis_of(output))

    def _end_forward(self) -> _Forward | None:
        """Leave the mode of this thread's forward pass, if one is running."""
        forward = getattr(self._local, "forward", None)
        if forward is None:
            return None
        self._local.forward = None
        stack = torch.overrides._get_current_function_mode_stack()
        if stack and stack[-1] is forward.mode:
            forward.mode.__exit__(None, None, None)
        return forward

    def current(self) -> _Forward | None:
        return getattr(self._local, "forward", None)

    # --- modules -------------------------------------------------------------------------------

    def _hook_module(self, path: str, module: nn.Module) -> None:
        site = self.selection.modules.get(module)
        leaf = _is_leaf(module)
        activation_site = _is_activation(site)
        axis = producer_axis(module)

        def pre(module: nn.Module, args: tuple[Any, ...]) -> None:
            forward = self.current()
            if forward is None:
                return
            forward.stack.append(_Frame(path, leaf, activation_site))
            if site is not None:
                with torch._C.DisableTorchFunction():
                    self._site_pre(site, module, args)

        def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            forward = self.current()
            if forward is None:
                return
            if forward.stack and forward.stack[-1].path == path:
                forward.stack.pop()
            if output is None:
                return  # the forward raised; the always-called hook only keeps the stack
            forward.record(output, axis, path)
            if site is not None:
                with torch._C.DisableTorchFunction():
                    self._site_post(forward, site, module, args, output)

        self._hook(module, pre, post)

    def _site_pre(self, site: Site, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not site.inplace or site.activation is None:
            return
        forward = self.current()
        assert forward is not None
        z = site.activation.read_preactivation(module, args, None)
        number = forward.pending[site.name] = forward.next_number(site.name)
        axis, producer = forward.made_by(args[0] if args else None)
        self.visitor.before(self._call(site, number, axis, producer), z)

    def _site_post(
        self, forward: _Forward, site: Site, module: nn.Module, args: tuple[Any, ...], output: Any
    ) -> None:
        activation = site.activation
        if activation is None:  # a module named by the user: its output alone
            number = forward.next_number(site.name)
            self.visitor.after(self._call(site, number, *forward.made_by(output)), None, output)
            return
        axis, producer = forward.made_by(args[0] if args else None)
        if site.inplace:
            number = forward.pending.get(site.name, 0)
            self.visitor.after(self._call(site, number, axis, producer), None, output)
        else:
            number = forward.next_number(site.name)
            z = activation.read_preactivation(module, args, output)
            self.visitor.after(self._call(site, number, axis, producer), z, output)
        forward.record(output, axis)  # made by a site, not by a layer

    def _call(self, site: Site, number: int, axis: int | None, producer: str | None) -> Call:
        key = (site.name, number, axis, producer)
        call = self._calls.get(key)
        if call is None or call.site is not site:
            call = self._calls[key] = Call(site, number, axis, producer)
        return call

    # --- functional calls (from the mode) ------------------------------------------------------

    def on_call(
        self, function: Any, rule: FunctionRule, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """An activation function called inside the root's forward: measure it, or say why not."""
        forward = self.current()
        if forward is None or not forward.stack or forward.stack[-1].is_site:
            return function(*args, **kwargs)
        frame = forward.stack[-1]
        label = call_label(function)
        name = frame.path if (frame.leaf and frame.path) else _join(frame.path, label)
        z = preactivation_of_call(args, kwargs)
        reason = _unmeasurable(z)
        if reason is None:
            # numbered whether selected or not, so a name means the same call either way
            number = forward.next_number(name)
            if not self.selection.measures(name, number):
                reason = NOT_SELECTED
        if reason is not None:
            self.visitor.unprobed(name, label, reason)
            return function(*args, **kwargs)
        activation, inplace = rule(args, kwargs)
        site = self._function_site(name, activation, inplace)
        call = self._call(site, number, *forward.made_by(z))
        if inplace:
            self.visitor.before(call, z)
            a = function(*args, **kwargs)
            self.visitor.after(call, None, a)
        else:
            a = function(*args, **kwargs)
            self.visitor.after(call, z, a)
        forward.record(a, call.axis)
        return a

    def _function_site(self, name: str, activation: Any, inplace: bool) -> Site:
        key = (name, activation.name, inplace)
        site = self._function_sites.get(key)
        if site is None:  # the first call's rule stays (a leaky slope is the same every call)
            site = self._function_sites[key] = Site(name, None, activation, inplace, "function")
        return site

    def follow(self, args: tuple[Any, ...], result: Any) -> None:
        """An elementwise op (a residual add, dropout) keeps its input's unit axis: that of its
        first same-shaped operand that has one. The producing layer passes on likewise, from
        the first operand a layer made (in ``relu(x + bn(y))`` the producer is ``bn``)."""
        forward = self.current()
        if forward is None or not forward.made or not isinstance(result, Tensor):
            return
        axis = producer = None
        for x in args[:2]:
            if isinstance(x, Tensor) and x.shape == result.shape:
                made_axis, made_producer = forward.made_by(x)
                if axis is None:
                    axis = made_axis
                if producer is None:
                    producer = made_producer
        forward.record(result, axis, producer)


def _join(path: str, label: str) -> str:
    return f"{path}.{label}" if path else label


def _is_leaf(module: nn.Module) -> bool:
    return next(iter(module.children()), None) is None


def _is_activation(site: Site | None) -> bool:
    return site is not None and site.activation is not None


def _unmeasurable(z: Any) -> str | None:
    if not isinstance(z, Tensor) or not z.is_floating_point():
        return NOT_FLOAT
    if z.dim() == 0:
        return SCALAR
    if isinstance(z, nn.Parameter):
        return PARAMETER
    return None


def _hookable(root: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Modules that take hooks: not TorchScript modules (compiled code), nor anything in them."""
    skipped: list[str] = []
    for path, module in root.named_modules():
        if any(path.startswith(prefix) for prefix in skipped):
            continue
        if isinstance(module, torch.jit.ScriptModule):
            skipped.append(f"{path}." if path else "")
            continue
        yield path, module
