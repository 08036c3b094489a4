"""``Probe``: reduce every batch at every site to sufficient statistics.

The sites are found while the model runs (finder.py); the probe is told about each call and
keeps no activation: each batch is reduced on the model's device and dropped. Hooks and the torch
function mode are removed on every exit path. A probe never changes the train/eval mode, so it
leaves the mode alone (``probe_model``, which sets eval mode, restores what it changed).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import _pytree

from variability.probes.errors import NoProbeSitesError, ProbeError
from variability.probes.evaluation import evaluating, model_device
from variability.probes.finder import Call, SiteFinder
from variability.probes.layout import Layout, as_site_tensor, layout_of
from variability.probes.results import ProbeResults, UnprobedCall
from variability.probes.sites import Site, SiteSelector, no_sites_message, select_sites
from variability.probes.state import OUTPUT, ProbeState, SiteRecord
from variability.probes.statistics import SiteStatistics
from variability.probes.thresholds import Thresholds
from variability.probes.workspace import Workspace
from variability.probes.wrappers import unwrap

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
    axis: int | None  # the unit axis, fixed when the site is first seen (None: shape rule)
    shape: tuple[int, ...] | None = None  # one sample's shape, as first seen
    deferred_active: bool = False  # the current batch's active count waits for the output hook


UnitAxis = int | Mapping[str, int] | None
"""One axis for every site, or site name -> axis (names as in the results, or without ``[k]``)."""


class Probe:
    """Measure a model at its probe sites while you run forward passes.

    >>> with Probe(model) as probe:          # doctest: +SKIP
    ...     for x in batches:
    ...         model(x)
    >>> probe.results()                      # doctest: +SKIP

    ``sites``: ``"auto"`` (activation modules and every call of a known activation function,
    found while the model runs), module names or glob patterns (also matched against functional
    site names), or a predicate ``(name, module) -> bool``; ``()`` probes only the output.
    ``unit_axis``: which axis holds the units (default: from the layer that produced the site's
    input, else DEFINITIONS.md's shape rule), for every site or per site name. ``redundancy``:
    also gather cross products over at most ``redundancy_units`` units per site (costs a matrix
    product per batch). ``gradients``: record the RMS gradient of the loss at each site's output.
    ``torch.compile``, ``nn.DataParallel`` and ``DistributedDataParallel`` wrappers are looked
    through (wrappers.py). ``thresholds``: the levels of the verdicts (``Thresholds``; the keyword
    levels ``tau``, ``collapsed``, ``collapsing`` and ``constant`` still work, deprecated).
    """

    def __init__(
        self,
        model: nn.Module,
        sites: SiteSelector = "auto",
        *,
        thresholds: Thresholds | None = None,
        redundancy: bool = True,
        redundancy_units: int = 1024,
        unit_axis: UnitAxis = None,
        gradients: bool = False,
        seed: int = 0,
        tau: float | None = None,
        collapsed: float | None = None,
        collapsing: float | None = None,
        constant: float | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Probe needs a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.thresholds = _thresholds(
            thresholds, tau=tau, collapsed=collapsed, collapsing=collapsing, constant=constant
        )
        self.redundancy = redundancy
        self.redundancy_units = int(redundancy_units)
        self.unit_axis = _check_unit_axis(unit_axis)
        self.gradients = gradients
        self.seed = seed
        unwrapped = unwrap(model)
        self.network = unwrapped.module
        self.notes = tuple(unwrapped.notes)
        self._selection = select_sites(self.network, sites)
        self._finder = SiteFinder(
            model, self.network, self._selection, self, compiled=unwrapped.compiled
        )
        self._attached = False
        self._workspace = Workspace()
        self._lock = threading.Lock()
        self.reset()

    @property
    def sites(self) -> list[Site]:
        """The sites known so far: module sites from the start, functional calls once seen."""
        known = list(self._selection.modules.values())
        seen = {id(s) for s in known}
        for entry in self._entries.values():
            if id(entry.site) not in seen:
                seen.add(id(entry.site))
                known.append(entry.site)
        return known

    # --- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything gathered so far (sites stay).

        The statistics objects are kept aside, cleared, and taken again by the sites that run
        next (a Monitor resets at every recorded step).
        """
        spare: dict[tuple[str, int], SiteStatistics] = getattr(self, "_spare", {})
        for key, entry in getattr(self, "_entries", {}).items():
            spare[key] = entry.stats
        self._spare = spare
        output = getattr(self, "_output", None)
        if output is not None:
            self._spare_output = output.stats
        elif not hasattr(self, "_spare_output"):
            self._spare_output = None
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._output: _Entry | None = None
        self._unprobed: Counter[tuple[str, str, str]] = Counter()
        self._samples = 0

    def attach(self) -> Probe:
        """Install the hooks (``with Probe(...)`` does this for you)."""
        if self._attached:
            return self
        self._finder.attach()
        self._attached = True
        return self

    def detach(self) -> None:
        """Remove every hook and the torch function mode and restore ``forward`` (torch.export
        programs); safe to call twice. The train/eval mode is left as it is: the probe never
        changes it, and a mode the caller set inside the block is the caller's."""
        if not self._attached:
            return
        try:
            self._finder.detach()
        finally:
            self._workspace.clear()
            self._attached = False

    close = detach

    def __enter__(self) -> Probe:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # --- what the finder reports ---------------------------------------------------------------

    def output(self, output: Any, axis: int | None) -> None:
        a = first_tensor(output)
        if a is None:
            return
        with self._lock, quiet_autograd():
            a = as_site_tensor(a)
            self._samples += a.shape[0]
            if self._output is None:
                layout = layout_of(a, self._axis_for(OUTPUT, OUTPUT, axis))
                stats = _reusable(self._spare_output, layout, False, a.device, self.redundancy)
                self._spare_output = None
                if stats is None:
                    stats = self._new_stats(layout, preactivation=False, device=a.device)
                self._output = _Entry(
                    _OUTPUT_SITE, 0, -1, stats, layout.unit_axis, tuple(a.shape[1:])
                )
            entry = self._output
            entry.stats.add(a, layout_of(a, entry.axis), workspace=self._workspace)
        self._watch_gradient(output, entry.stats)

    def before(self, call: Call, z: Tensor) -> None:
        activation = call.site.activation
        assert activation is not None
        with self._lock, quiet_autograd():
            z = as_site_tensor(z)
            entry = self._entry(call, z)
            entry.deferred_active = entry.stats.add_preactivation(
                z,
                layout_of(z, entry.axis),
                activation,
                self.thresholds.tau,
                count_active=activation.count_from_output is None,
                workspace=self._workspace,
            )

    def after(self, call: Call, z: Tensor | None, output: Any) -> None:
        a_raw = output if isinstance(output, Tensor) else first_tensor(output)
        if a_raw is None:
            return
        activation = call.site.activation
        with self._lock, quiet_autograd():
            a = as_site_tensor(a_raw)
            entry = self._entry(call, a)
            layout = layout_of(a, entry.axis)
            if activation is None:
                entry.stats.add(a, layout, workspace=self._workspace)
            elif z is None:  # in place: z was read by ``before``
                entry.stats.add(
                    a,
                    layout,
                    activation=activation,
                    active_from_output=entry.deferred_active,
                    workspace=self._workspace,
                )
            else:
                entry.stats.add(
                    a,
                    layout,
                    z=as_site_tensor(z),
                    activation=activation,
                    tau=self.thresholds.tau,
                    workspace=self._workspace,
                )
        self._watch_gradient(a_raw, entry.stats)

    def unprobed(self, name: str, function: str, reason: str) -> None:
        with self._lock:
            self._unprobed[name, function, reason] += 1

    # --- helpers -------------------------------------------------------------------------------

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

    def _entry(self, call: Call, x: Tensor) -> _Entry:
        site = call.site
        key = (site.name, call.number)
        entry = self._entries.get(key)
        if entry is None:
            indexed = f"{site.name}[{call.number}]"
            layout = layout_of(x, self._axis_for(indexed, site.name, call.axis))
            preactivation = site.activation is not None
            stats = _reusable(
                self._spare.pop(key, None), layout, preactivation, x.device, self.redundancy
            )
            if stats is None:
                stats = self._new_stats(layout, preactivation, x.device)
            entry = _Entry(
                site, call.number, len(self._entries), stats, layout.unit_axis, tuple(x.shape[1:])
            )
            self._entries[key] = entry
        return entry

    def _axis_for(self, indexed: str, name: str, made: int | None) -> int | None:
        """The user's unit axis for this site, else the one the producing layer gave."""
        chosen = self.unit_axis
        if chosen is None:
            return made
        if isinstance(chosen, int):
            return chosen
        for key in (indexed, name):
            if key in chosen:
                return chosen[key]
        return made

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
        repeated = {name for name, call in self._entries if call > 0}
        entries = sorted(self._entries.items(), key=lambda item: item[1].order)
        records = []
        for (name, _), entry in entries:
            if name in repeated:
                name = f"{name}[{entry.call}]"
            stats = entry.stats.copy() if copy else entry.stats
            records.append(
                SiteRecord(
                    name, entry.site.kind, entry.site.source, stats, entry.site.layer, entry.shape
                )
            )
        output = None
        if self._output is not None:
            stats = self._output.stats.copy() if copy else self._output.stats
            output = SiteRecord(OUTPUT, OUTPUT, OUTPUT, stats, OUTPUT, self._output.shape)
        seen = {name for name, _ in self._entries}
        unused = tuple(s.name for s in self._selection.modules.values() if s.name not in seen)
        unprobed = {
            UnprobedCall(name, function, reason): count
            for (name, function, reason), count in self._unprobed.items()
        }
        return ProbeState(records, output, self._samples, unused, unprobed, self.notes)

    def results(self, *, distributed: bool = False, group: Any = None) -> ProbeResults:
        """Figures of every site; with ``distributed=True`` merged over all ranks (collective).

        The figures are computed from the live statistics (no copy: a Monitor asks for them at
        every recorded step); merging over ranks works on copies. Raises NoProbeSitesError when
        forward passes ran but no site was measured.
        """
        self._check_unit_axis_names()
        if distributed:
            state = self._state(copy=True).all_reduced(group)
        else:
            state = self._state(copy=False)
        if not state.records and self._samples and not self._selection.output_only:
            raise NoProbeSitesError(nothing_measured(self.network, state.unprobed_calls))
        return state.results(self.thresholds)

    def _check_unit_axis_names(self) -> None:
        if not isinstance(self.unit_axis, Mapping) or not self._entries:
            return
        names = {name for name, _ in self._entries} | {
            f"{name}[{call}]" for name, call in self._entries
        }
        unknown = [key for key in self.unit_axis if key not in names and key != OUTPUT]
        if unknown:
            raise ProbeError(
                f"unit_axis names {', '.join(map(repr, unknown))}, which no site is called; "
                f"sites: {', '.join(sorted(names))}"
            )


def _thresholds(thresholds: Thresholds | None, **levels: float | None) -> Thresholds:
    """``thresholds`` (default ``Thresholds()``), or the deprecated keyword levels."""
    given = {name: value for name, value in levels.items() if value is not None}
    if thresholds is not None and not isinstance(thresholds, Thresholds):
        raise TypeError(f"thresholds must be a Thresholds, got {type(thresholds).__name__}")
    if not given:
        return Thresholds() if thresholds is None else thresholds
    if thresholds is not None:
        raise TypeError(
            f"Probe got thresholds= and {', '.join(given)}=: put every level in the Thresholds"
        )
    listed = ", ".join(f"{name}={value!r}" for name, value in given.items())
    warnings.warn(
        f"Probe({listed}) is deprecated: pass thresholds=Thresholds({listed})",
        DeprecationWarning,
        stacklevel=3,
    )
    return Thresholds(**given)


def _check_unit_axis(unit_axis: UnitAxis) -> UnitAxis:
    if unit_axis is None or isinstance(unit_axis, int):
        return unit_axis
    if isinstance(unit_axis, Mapping) and all(
        isinstance(k, str) and isinstance(v, int) for k, v in unit_axis.items()
    ):
        return dict(unit_axis)
    raise ProbeError(
        "unit_axis must be an axis (an int) or a dict of site name -> axis, like "
        "{'encoder.layers.0.gelu': -1}"
    )


def nothing_measured(model: nn.Module, unprobed: Mapping[UnprobedCall, int]) -> str:
    """The message of a probe that ran forward passes but measured no site."""
    if not unprobed:
        return no_sites_message(model)
    listed = ", ".join(
        f"{call.name} ({count} calls, {call.reason})" for call, count in list(unprobed.items())[:8]
    )
    return (
        f"{type(model).__name__}'s forward passes ran activations, but no probe site was "
        f"measured: {listed}. Name the sites to probe with sites=[...] (module names, or "
        "functional site names like 'blocks.0.relu')."
    )


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
