"""Which layer made each probe site's input, and a tap on the sites' pre-activations.

Why: the per-site unit axis is read off the layer that produced the site's input (finder.py);
the same link tells a remedy which layer to rescale so that the site receives what it should.
``site_links`` runs one forward pass and reports that link for every site call, in depth order;
``SiteTap`` hands each site call's pre-activation to a callback while the model runs.

Nothing here changes the model: the finder's hooks and torch function mode, plus forward hooks
of our own on the layers that can produce a site's input, all removed on every exit path.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from variability.probes.finder import Call, SiteFinder
from variability.probes.layout import as_site_tensor, layout_of, producer_axis
from variability.probes.sites import select_sites
from variability.probes.wrappers import unwrap

MODEL_INPUT = "(input)"
"""``SiteLink.input_from`` when the producing layer reads the model's own input."""


@dataclass(frozen=True)
class SiteLink:
    """One site call and the layer that made its input.

    ``name``: as in the probe's results (``act[1]`` when a name runs more than once per forward).
    ``module``: the activation module, or None for a functional call. ``producer``: the module
    path (in the unwrapped network) of the layer that made the site's input, None when no known
    layer did (docs/probes.md, "Units"). ``producer_calls``: how often that layer ran in the
    forward pass (more than once: shared weights). ``direct``: the site's pre-activation is that
    layer's output tensor itself, not a sum or other elementwise op of it (a residual add).
    ``input_from``: what the producing layer read: the name of the site whose output it is,
    ``MODEL_INPUT``, or None. ``unit_axis``: the axis of the pre-activation that holds the
    units; ``units``: how many.
    """

    name: str
    base: str
    number: int
    kind: str
    module: nn.Module | None
    producer: str | None
    producer_calls: int
    direct: bool
    input_from: str | None
    unit_axis: int
    units: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.base, self.number)


@dataclass
class _Seen:
    call: Call
    direct: bool
    unit_axis: int
    units: int


class _LinkRecorder:
    """The finder's visitor for one forward pass: every site call, in the order it ran."""

    def __init__(self) -> None:
        self.calls: list[_Seen] = []
        self.outputs_of_layers: dict[str, tuple[weakref.ref, int]] = {}
        self.layer_calls: Counter[str] = Counter()
        self.site_outputs: dict[int, tuple[weakref.ref, tuple[str, int]]] = {}
        self.layer_inputs: dict[str, tuple[str, int] | str | None] = {}
        self.model_input: weakref.ref | None = None
        self._pending: dict[tuple[str, int], Tensor] = {}

    def before(self, call: Call, z: Tensor) -> None:
        self._pending[(call.site.name, call.number)] = z
        self._seen(call, z)

    def after(self, call: Call, z: Tensor | None, a: Any) -> None:
        key = (call.site.name, call.number)
        if z is not None:
            self._seen(call, z)
        self._pending.pop(key, None)
        if isinstance(a, Tensor):
            self.site_outputs[id(a)] = (weakref.ref(a), key)

    def output(self, a: Any, axis: int | None) -> None:
        pass

    def unprobed(self, name: str, function: str, reason: str) -> None:
        pass

    def _seen(self, call: Call, z: Tensor) -> None:
        made = self.outputs_of_layers.get(call.producer) if call.producer else None
        # the same tensor, not changed in place since (``out += identity`` keeps the object)
        direct = made is not None and made[0]() is z and made[1] == z._version
        site_tensor = as_site_tensor(z)
        layout = layout_of(site_tensor, call.axis)
        self.calls.append(_Seen(call, direct, layout.unit_axis, layout.units))

    # hooks on the layers that can produce a site's input

    def layer_pre(self, path: str, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        source: tuple[str, int] | str | None = None
        if isinstance(x, Tensor):
            entry = self.site_outputs.get(id(x))
            if entry is not None and entry[0]() is x:
                source = entry[1]
            elif self.model_input is not None and self.model_input() is x:
                source = MODEL_INPUT
        if path in self.layer_inputs and self.layer_inputs[path] != source:
            source = None  # a layer run on several inputs reads no one thing
        self.layer_inputs[path] = source

    def layer_post(self, path: str, output: Any) -> None:
        self.layer_calls[path] += 1
        if isinstance(output, Tensor):
            self.outputs_of_layers[path] = (weakref.ref(output), output._version)


def _layers(network: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for path, module in network.named_modules():
        if path and producer_axis(module) is not None:
            yield path, module


def site_links(model: nn.Module, batch: Any) -> list[SiteLink]:
    """Run ``model(batch)`` once (no gradients; the caller sets eval or train mode) and return
    every site call in depth order with the layer that made its input."""
    network = unwrap(model)
    selection = select_sites(network.module, "auto")
    recorder = _LinkRecorder()
    finder = SiteFinder(model, network.module, selection, recorder, compiled=network.compiled)
    handles = []
    try:
        for path, module in _layers(selection.hooked):
            handles.append(
                module.register_forward_pre_hook(
                    lambda _m, args, path=path: recorder.layer_pre(path, args)
                )
            )
            handles.append(
                module.register_forward_hook(
                    lambda _m, _args, out, path=path: recorder.layer_post(path, out)
                )
            )

        def remember_input(_module: nn.Module, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], Tensor):
                recorder.model_input = weakref.ref(args[0])

        handles.append(network.module.register_forward_pre_hook(remember_input))
        finder.attach()
        with torch.no_grad():
            model(batch)
    finally:
        finder.detach()
        for handle in handles:
            handle.remove()
    return _links(recorder)


def _links(recorder: _LinkRecorder) -> list[SiteLink]:
    per_name = Counter(seen.call.site.name for seen in recorder.calls)

    def display(key: tuple[str, int]) -> str:
        base, number = key
        return f"{base}[{number}]" if per_name[base] > 1 else base

    links = []
    for seen in recorder.calls:
        call = seen.call
        source = recorder.layer_inputs.get(call.producer) if call.producer else None
        input_from = display(source) if isinstance(source, tuple) else source
        site = call.site
        links.append(
            SiteLink(
                name=display((site.name, call.number)),
                base=site.name,
                number=call.number,
                kind=site.kind,
                module=site.module if site.source == "module" else None,
                producer=call.producer or None,
                producer_calls=recorder.layer_calls.get(call.producer, 0) if call.producer else 0,
                direct=seen.direct,
                input_from=input_from,
                unit_axis=seen.unit_axis,
                units=seen.units,
            )
        )
    return links


SiteCallback = Callable[[tuple[str, int], Tensor], None]
"""``(key, z)``: a site call's pre-activation, read before an in-place op overwrites it (copy
what you keep: the tensor may change as soon as the callback returns)."""


class _Tap:
    def __init__(self, on_site: SiteCallback) -> None:
        self.on_site = on_site

    def before(self, call: Call, z: Tensor) -> None:
        self.on_site((call.site.name, call.number), z)

    def after(self, call: Call, z: Tensor | None, a: Any) -> None:
        if z is not None:
            self.on_site((call.site.name, call.number), z)

    def output(self, a: Any, axis: int | None) -> None:
        pass

    def unprobed(self, name: str, function: str, reason: str) -> None:
        pass


@contextmanager
def site_tap(model: nn.Module, on_site: SiteCallback) -> Iterator[nn.Module]:
    """While the block runs, hand every site call's pre-activation to ``on_site``; yields the
    unwrapped network (whose module paths ``SiteLink.producer`` names). An exception raised by
    ``on_site`` ends that forward pass and propagates to the caller of the model."""
    network = unwrap(model)
    selection = select_sites(network.module, "auto")
    finder = SiteFinder(model, network.module, selection, _Tap(on_site), compiled=network.compiled)
    finder.attach()
    try:
        yield selection.hooked
    finally:
        finder.detach()
