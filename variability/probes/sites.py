"""Finding the probe sites of a model: activation modules, functional calls, or named modules."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import fx, nn

from variability.probes.activations import (
    Activation,
    activation_for_module,
    is_inplace_module,
    known_function_names,
    known_module_names,
)
from variability.probes.errors import NoProbeSitesError, ProbeError
from variability.probes.functional import trace_functional_sites

SiteSelector = str | Sequence[str] | Callable[[str, nn.Module], bool]
"""``"auto"``, a module name or glob pattern, a sequence of them, or ``(name, module) -> bool``."""


@dataclass(frozen=True)
class Site:
    """One place to probe: a module whose input is ``z`` and whose output is ``a``."""

    name: str
    module: nn.Module
    activation: Activation | None
    inplace: bool
    source: str  # "module", "function" (found by torch.fx) or "named" (chosen by the user)

    @property
    def kind(self) -> str:
        if self.activation is not None:
            return self.activation.name
        return type(self.module).__name__


@dataclass
class Discovery:
    sites: list[Site]
    traced: fx.GraphModule | None  # run in place of model.forward when sites came from fx


def _module_site(name: str, module: nn.Module, source: str) -> Site:
    activation = activation_for_module(module)
    return Site(
        name=name or "(model)",
        module=module,
        activation=activation,
        inplace=activation is not None and is_inplace_module(module),
        source=source,
    )


def _functional_discovery(model: nn.Module) -> Discovery:
    traced, found = trace_functional_sites(model)
    sites = [Site(s.name, s.module, s.activation, s.inplace, "function") for s in found]
    return Discovery(sites, traced)


def _no_sites_message(model: nn.Module) -> str:
    return (
        f"found no probe site in {type(model).__name__}: it has no activation module "
        f"({', '.join(known_module_names())}) and torch.fx found no call of a known activation "
        f"function ({', '.join(known_function_names())}). Name the sites to probe with "
        "sites=[...] (module names or glob patterns), or register your activation with "
        "variability.register_activation."
    )


def discover_sites(model: nn.Module, sites: SiteSelector = "auto") -> Discovery:
    """The probe sites of ``model`` in module order (execution order is fixed when probing)."""
    if isinstance(sites, str) and sites == "auto":
        found = [
            _module_site(name, module, "module")
            for name, module in model.named_modules()
            if activation_for_module(module) is not None
        ]
        if found:
            return Discovery(found, None)
        discovery = _functional_discovery(model)
        if not discovery.sites:
            raise NoProbeSitesError(_no_sites_message(model))
        return discovery
    if callable(sites):
        chosen = [
            _module_site(name, module, "named")
            for name, module in model.named_modules()
            if sites(name, module)
        ]
        if not chosen:
            raise NoProbeSitesError(
                f"the site predicate selected no module of {type(model).__name__}"
            )
        return Discovery(chosen, None)
    patterns = [sites] if isinstance(sites, str) else list(sites)
    if not all(isinstance(p, str) for p in patterns):
        raise ProbeError(
            "sites must be 'auto', a module name or glob pattern, a list of them, "
            "or a predicate (name, module) -> bool"
        )
    return _by_patterns(model, patterns)


def _by_patterns(model: nn.Module, patterns: list[str]) -> Discovery:
    modules = dict(model.named_modules())
    chosen: dict[str, Site] = {}
    unmatched: list[str] = []
    for pattern in patterns:
        names = [n for n in modules if n and (n == pattern or fnmatch.fnmatchcase(n, pattern))]
        if not names:
            unmatched.append(pattern)
        for name in names:
            chosen.setdefault(name, _module_site(name, modules[name], "named"))
    if not unmatched:
        ordered = [chosen[n] for n in modules if n in chosen]
        return Discovery(ordered, None)
    # Patterns that name no module may name functional sites ("block1.relu", "*.tanh").
    functional = _functional_discovery(model) if not chosen else Discovery([], None)
    still = [
        p
        for p in unmatched
        if not any(fnmatch.fnmatchcase(s.name, p) or s.name == p for s in functional.sites)
    ]
    if still:
        available = [n for n in modules if n][:12]
        raise ProbeError(
            f"no module of {type(model).__name__} is named like {', '.join(map(repr, still))}; "
            f"module names look like: {', '.join(available)}"
            + (" ..." if len(modules) > 13 else "")
        )
    selected = [
        s for s in functional.sites if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)
    ]
    return Discovery(selected, functional.traced)
