"""``Probe``: hooks that reduce every batch at every site to sufficient statistics.

The hooks keep no activation: each batch is reduced on the model's device and dropped. Hooks are
removed, the model's ``forward`` and its train/eval mode restored, on every exit path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import _pytree

from variability.probes.evaluation import evaluating, model_device, set_mode
from variability.probes.layout import Layout, as_site_tensor, default_unit_axis_for_3d, layout_of
from variability.probes.results import ProbeResults
from variability.probes.sites import Site, SiteSelector, discover_sites
from variability.probes.state import OUTPUT, ProbeState, SiteRecord
from variability.probes.statistics import SiteStatistics
from variability.probes.thresholds import Thresholds
from variability.probes.workspace import Workspace

_NOTHING = contextlib.nullcontext()


@contextlib.contextmanager
def _outside_inference_mode() -> Iterator[None]:
    """Leave ``torch.inference_mode()`` for the hook's work, gradients still off: statistics made
    or updated in place there must stay ordinary tensors, usable after the block."""
    with torch.inference_mode(False), torch.no_grad():
        yield


def quiet_autograd() -> contextlib.AbstractContextManager:
    """``torch.no_grad()`` while autograd records, else nothing (cheaper, on every hook call);
    out of inference mode when the model runs in it."""
    if torch.is_inference_mode_enabled():
        return _outside_inference_mode()
    return torch.no_grad() if torch.is_grad_enabled() else _NOTHING


def first_tensor(value: Any) -> Tensor | None:
    """The first floating-point tensor in a model output (a tensor, tuple, list or dict)."""
    if isinstance(value, Tensor):
        return value
    for leaf in _pytree.tree_leaves(value):
        if isinstance(leaf, Tensor) and leaf.is_floating_point():
            return leaf
    return None


@dataclass
class _Entry:
    """Statistics of one (site, call number) pair, with the depth at which it was first seen."""

    site: Site
    call: int
    order: int
    stats: SiteStatistics
    deferred_active: bool = False  # the current batch's active count waits for the output hook


class Probe:
    """Measure a model at its probe sites while you run forward passes.

    >>> with Probe(model) as probe:          # doctest: +SKIP
    ...     for x in batches:
    ...         model(x)
    >>> probe.results()                      # doctest: +SKIP

    ``sites``: ``"auto"`` (activation modules, else functional activations found by torch.fx),
    module names or glob patterns, or a predicate ``(name, module) -> bool``; ``()`` probes only
    the output.
    ``unit_axis``: which axis holds the units (default: DEFINITIONS.md's rule). ``redundancy``:
    also gather cross products over at most ``redundancy_units`` units per site (costs a matrix
    product per batch). ``gradients``: record the RMS gradient of the loss at each site's output.
    """

    def __init__(
        self,
        model: nn.Module,
        sites: SiteSelector = "auto",
        *,
        tau: float = 0.1,
        collapsed: float = 1e-3,
        collapsing: float = 0.05,
        constant: float = 1e-3,
        redundancy: bool = True,
        redundancy_units: int = 1024,
        unit_axis: int | None = None,
        gradients: bool = False,
        seed: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Probe needs a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.thresholds = Thresholds(tau, collapsed, collapsing, constant)
        self.redundancy = redundancy
        self.redundancy_units = int(redundancy_units)
        self.unit_axis = unit_axis
        self.gradients = gradients
        self.seed = seed
        discovery = discover_sites(model, sites)
        self.sites: list[Site] = discovery.sites
        self._traced = discovery.traced
        self._axis_3d = default_unit_axis_for_3d(model)
        self._handles: list[Any] = []
        self._attached = False
        self._saved_forward: Any = None
        self._had_instance_forward = False
        self._training: bool | None = None
        self._workspace = Workspace()
        self.reset()

    # --- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything gathered so far (sites stay).

        The statistics objects are kept aside, cleared, and taken again by the sites that run
        next (a Monitor resets at every recorded step).
        """
        spare: dict[tuple[int, int], SiteStatistics] = getattr(self, "_spare", {})
        for key, entry in getattr(self, "_entries", {}).items():
            spare[key] = entry.stats
        self._spare = spare
        output = getattr(self, "_output", None)
        if output is not None:
            self._spare_output = output.stats
        elif not hasattr(self, "_spare_output"):
            self._spare_output = None
        self._entries: dict[tuple[int, int], _Entry] = {}
        self._output: _Entry | None = None
        self._calls = [0] * len(self.sites)
        self._pending_call = [0] * len(self.sites)
        self._samples = 0

    def attach(self) -> Probe:
        """Install the hooks (``with Probe(...)`` does this for you)."""
        if self._attached:
            return self
        self._training = self.model.training
        try:
            if self._traced is not None:
                self._had_instance_forward = "forward" in self.model.__dict__
                self._saved_forward = self.model.__dict__.get("forward")
                self.model.forward = self._traced.forward  # type: ignore[method-assign]
            self._handles.append(self.model.register_forward_pre_hook(self._root_pre_hook))
            self._handles.append(self.model.register_forward_hook(self._root_hook))
            for index, site in enumerate(self.sites):
                self._install(index, site)
        except BaseException:
            self._attached = True
            self.detach()
            raise
        self._attached = True
        return self

    def detach(self) -> None:
        """Remove every hook, restore ``forward`` and the train/eval mode; safe to call twice."""
        if not self._attached:
            return
        try:
            for handle in self._handles:
                handle.remove()
        finally:
            self._handles.clear()
            if self._traced is not None:
                if self._had_instance_forward:
                    self.model.forward = self._saved_forward  # type: ignore[method-assign]
                else:
                    self.model.__dict__.pop("forward", None)
            if self._training is not None:
                set_mode(self.model, self._training)
            self._workspace.clear()
            self._attached = False

    close = detach

    def __enter__(self) -> Probe:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # --- hooks ---------------------------------------------------------------------------------

    def _root_pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._calls = [0] * len(self.sites)

    def _root_hook(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        a = first_tensor(output)
        if a is None:
            return
        with quiet_autograd():
            a = as_site_tensor(a)
            self._samples += a.shape[0]
            if self._output is None:
                layout = self._layout(a)
                stats = _reusable(self._spare_output, layout, False, a.device, self.redundancy)
                self._spare_output = None
                if stats is None:
                    stats = self._new_stats(layout, preactivation=False, device=a.device)
                self._output = _Entry(_OUTPUT_SITE, 0, -1, stats)
            entry = self._output
            entry.stats.add(a, self._layout(a), workspace=self._workspace)
        self._watch_gradient(output, entry.stats)

    def _install(self, index: int, site: Site) -> None:
        module = site.module
        if site.activation is not None and site.inplace:
            self._handles.append(module.register_forward_pre_hook(self._pre_hook_for(index)))
        self._handles.append(module.register_forward_hook(self._hook_for(index)))

    def _pre_hook_for(self, index: int) -> Callable:
        def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            site = self.sites[index]
            activation = site.activation
            call = self._next_call(index)
            self._pending_call[index] = call
            with quiet_autograd():
                z = as_site_tensor(activation.read_preactivation(module, args, None))
                entry = self._entry(index, call, z)
                entry.deferred_active = entry.stats.add_preactivation(
                    z,
                    self._layout(z),
                    activation,
                    self.thresholds.tau,
                    count_active=activation.count_from_output is None,
                    workspace=self._workspace,
                )

        return pre_hook

    def _hook_for(self, index: int) -> Callable:
        site = self.sites[index]
        activation = site.activation
        tau = self.thresholds.tau
        workspace = self._workspace
        inplace = activation is not None and site.inplace

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            a_raw = output if isinstance(output, Tensor) else first_tensor(output)
            if a_raw is None:
                return
            call = self._pending_call[index] if inplace else self._next_call(index)
            with quiet_autograd():
                a = as_site_tensor(a_raw)
                entry = self._entry(index, call, a)
                layout = self._layout(a)
                if activation is None:
                    entry.stats.add(a, layout, workspace=workspace)
                elif inplace:
                    entry.stats.add(
                        a,
                        layout,
                        activation=activation,
                        active_from_output=entry.deferred_active,
                        workspace=workspace,
                    )
                else:
                    z = as_site_tensor(activation.read_preactivation(module, args, output))
                    entry.stats.add(
                        a, layout, z=z, activation=activation, tau=tau, workspace=workspace
                    )
            self._watch_gradient(a_raw, entry.stats)

        return hook

    # --- helpers -------------------------------------------------------------------------------

    def _next_call(self, index: int) -> int:
        call = self._calls[index]
        self._calls[index] = call + 1
        return call

    def _new_stats(self, layout: Layout, preactivation: bool, device: torch.device):
        cross = None
        if self.redundancy:
            if layout.units <= self.redundancy_units:
                cross = torch.arange(layout.units)
            else:
                generator = torch.Generator().manual_seed(self.seed)
                cross = torch.randperm(layout.units, generator=generator)[: self.redundancy_units]
                cross = torch.sort(cross).values
        return SiteStatistics(
            layout.units, preactivation=preactivation, cross_index=cross, device=device
        )

    def _entry(self, index: int, call: int, x: Tensor) -> _Entry:
        key = (index, call)
        entry = self._entries.get(key)
        if entry is None:
            site = self.sites[index]
            layout = self._layout(x)
            preactivation = site.activation is not None
            stats = _reusable(
                self._spare.pop(key, None), layout, preactivation, x.device, self.redundancy
            )
            if stats is None:
                stats = self._new_stats(layout, preactivation, x.device)
            entry = _Entry(site, call, len(self._entries), stats)
            self._entries[key] = entry
        return entry

    def _layout(self, x: Tensor) -> Layout:
        return layout_of(x, self._axis_3d, self.unit_axis)

    def _watch_gradient(self, output: Any, stats: SiteStatistics) -> None:
        if not self.gradients or not torch.is_grad_enabled():
            return
        tensor = first_tensor(output)
        if tensor is not None and tensor.requires_grad:
            tensor.register_hook(lambda grad: stats.add_gradient(grad))

    # --- results -------------------------------------------------------------------------------

    def state(self) -> ProbeState:
        """A copy of the sufficient statistics gathered so far, mergeable with others."""
        return self._state(copy=True)

    def _state(self, *, copy: bool) -> ProbeState:
        """The statistics gathered so far, copied or (to compute figures at once) shared."""
        repeated = {index for index, call in self._entries if call > 0}
        entries = sorted(self._entries.items(), key=lambda item: item[1].order)
        records = []
        for (index, _), entry in entries:
            name = entry.site.name
            if index in repeated:
                name = f"{name}[{entry.call}]"
            stats = entry.stats.copy() if copy else entry.stats
            records.append(SiteRecord(name, entry.site.kind, entry.site.source, stats))
        output = None
        if self._output is not None:
            stats = self._output.stats.copy() if copy else self._output.stats
            output = SiteRecord(OUTPUT, OUTPUT, OUTPUT, stats)
        seen = {index for index, _ in self._entries}
        unused = tuple(s.name for i, s in enumerate(self.sites) if i not in seen)
        return ProbeState(records, output, self._samples, unused)

    def results(self, *, distributed: bool = False, group: Any = None) -> ProbeResults:
        """Figures of every site; with ``distributed=True`` merged over all ranks (collective).

        The figures are computed from the live statistics (no copy: a Monitor asks for them at
        every recorded step); merging over ranks works on copies.
        """
        if distributed:
            return self._state(copy=True).all_reduced(group).results(self.thresholds)
        return self._state(copy=False).results(self.thresholds)


def _reusable(
    stats: SiteStatistics | None,
    layout: Layout,
    preactivation: bool,
    device: torch.device,
    redundancy: bool,
) -> SiteStatistics | None:
    """A spare statistics object, cleared, if it has the structure a new one would have."""
    if (
        stats is None
        or stats.units != layout.units
        or (stats.cross_index is not None) != redundancy
        or stats.has_preactivation != preactivation
        or stats.count.device != device
    ):
        return None
    stats.clear()
    return stats


_OUTPUT_SITE = Site(OUTPUT, nn.Identity(), activation=None, inplace=False, source=OUTPUT)


def probe_model(
    model: nn.Module,
    inputs: Tensor | Iterable[Tensor],
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    on_batch: Callable[[int], None] | None = None,
    **probe_options: Any,
) -> ProbeResults:
    """Run ``inputs`` through ``model`` in eval mode without gradients, and return the figures.

    ``inputs`` is one tensor (split into batches of ``batch_size``) or an iterable of batches.
    ``on_batch(rows)`` is called after each batch (for progress bars).
    """
    if device is None:
        device = model_device(model)
    batches = inputs.split(batch_size) if isinstance(inputs, Tensor) else inputs
    probe = Probe(model, **probe_options)
    with evaluating(model), probe:
        for batch in batches:
            model(batch.to(device))
            if on_batch is not None:
                on_batch(batch.shape[0])
    return probe.results()
