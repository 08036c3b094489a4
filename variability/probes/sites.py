"""Which sites to probe: the modules known before the model runs, and which functional calls seen
while it runs count as sites.

Activation modules are known from the model's structure. Functional calls (``F.gelu(x)``,
``x.relu_()``) are only seen while the model runs (finder.py); ``Selection.measures`` says which
of them to measure. A ``torch.export`` program (an ``fx.GraphModule``) names its calls after its
module stack instead (functional.py).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import fx, nn

from variability.probes.activations import (
    Activation,
    activation_for_module,
    is_inplace_module,
    known_call_labels,
    known_function_names,
    known_module_names,
)
from variability.probes.errors import NoProbeSitesError, ProbeError
from variability.probes.functional import trace_functional_sites

SiteSelector = str | Sequence[str] | Callable[[str, nn.Module], bool]
"""``"auto"``, a module name or glob pattern, a sequence of them, or ``(name, module) -> bool``."""


@dataclass(frozen=True)
class Site:
    """One place to probe: a module whose input is ``z`` and whose output is ``a``, or a
    functional activation call. ``name`` is the site's base name: the display name adds
    ``[k]`` when the same base runs more than once per forward pass."""

    name: str
    module: nn.Module | None
    activation: Activation | None
    inplace: bool
    source: str  # "module", "function" (seen while the model runs) or "named" (chosen by the user)

    @property
    def kind(self) -> str:
        if self.activation is not None:
            return self.activation.name
        return type(self.module).__name__

    @property
    def layer(self) -> str:
        """The layer's type as torchinfo shows it: the module's class (``ReLU``, ``HanLayer``),
        or for a functional call the function called (``relu()``)."""
        if self.source == "function" or self.module is None:
            return f"{self.kind}()"
        return type(self.module).__name__


@dataclass
class Selection:
    """The module sites (by the module they hook) and which functional calls to measure.

    ``hooked``: the module tree whose forward runs (the model, or for a GraphModule the graph
    rewritten by functional.py). ``traced``: that rewritten graph, run in place of the model's
    forward while probing (torch.export programs only).
    """

    modules: dict[nn.Module, Site]
    functions: bool | list[str]  # True: every call; False: none; else glob patterns of names
    hooked: nn.Module
    traced: fx.GraphModule | None = None
    output_only: bool = False
    patterns: list[str] = field(default_factory=list)

    def measures(self, name: str, call: int) -> bool:
        """Whether the functional call named ``name`` (its ``call``-th in this forward) counts."""
        if self.functions is True or self.functions is False:
            return self.functions
        indexed = f"{name}[{call}]"
        return any(p in (name, indexed) or fnmatch.fnmatchcase(name, p) for p in self.functions)


def _module_site(name: str, module: nn.Module, source: str) -> Site:
    activation = activation_for_module(module)
    return Site(
        name=name or "(model)",
        module=module,
        activation=activation,
        inplace=activation is not None and is_inplace_module(module),
        source=source,
    )


def no_sites_message(model: nn.Module) -> str:
    return (
        f"found no probe site in {type(model).__name__}: its forward pass ran no activation "
        f"module ({', '.join(known_module_names())}) and no call of a known activation "
        f"function ({', '.join(known_function_names())}). Name the sites to probe with "
        "sites=[...] (module names or glob patterns), or register your activation with "
        "variability.register_activation."
    )


def select_sites(model: nn.Module, sites: SiteSelector = "auto") -> Selection:
    """The module sites of ``model`` in module order, and which functional calls count."""
    if isinstance(model, fx.GraphModule):
        return _graph_selection(model, sites)
    if isinstance(sites, str) and sites == "auto":
        found = {
            module: _module_site(name, module, "module")
            for name, module in model.named_modules()
            if activation_for_module(module) is not None
        }
        return Selection(found, True, model)
    if callable(sites):
        return _by_predicate(model, sites)
    patterns = _patterns(sites)
    if not patterns:
        return Selection({}, False, model, output_only=True)
    modules = dict(model.named_modules())
    chosen = {
        module: _module_site(name, module, "named")
        for name, module in modules.items()
        if name and any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    _check_patterns(model, patterns, modules)
    return Selection(chosen, patterns, model, patterns=patterns)


def _patterns(sites: SiteSelector) -> list[str]:
    patterns = [sites] if isinstance(sites, str) else list(sites)  # type: ignore[arg-type]
    if not all(isinstance(p, str) for p in patterns):
        raise ProbeError(
            "sites must be 'auto', a module name or glob pattern, a list of them, "
            "or a predicate (name, module) -> bool"
        )
    return patterns


_INDEX = re.compile(r"\[\d+\]$")


def _check_patterns(model: nn.Module, patterns: list[str], modules: dict[str, nn.Module]) -> None:
    """A pattern that can name neither a module nor a functional call of any module is a typo:
    say so now, before the model runs."""
    paths = list(modules)
    labels = known_call_labels()
    candidates = set(paths) | {f"{p}.{label}" if p else label for p in paths for label in labels}
    unmatched = []
    for pattern in patterns:
        bare = _INDEX.sub("", pattern)
        if bare in candidates or pattern in candidates:
            continue
        if not any(fnmatch.fnmatchcase(name, pattern) for name in candidates):
            unmatched.append(pattern)
    if unmatched:
        available = [n for n in paths if n][:12]
        raise ProbeError(
            f"no module of {type(model).__name__} is named like "
            f"{', '.join(map(repr, unmatched))}, and no module could make a call so named; "
            f"module names look like: {', '.join(available)}" + (" ..." if len(paths) > 13 else "")
        )


def _graph_selection(model: fx.GraphModule, sites: SiteSelector) -> Selection:
    """A GraphModule (torch.export's ``.module()``) calls ATen operators from one flat graph:
    the graph is rewritten so that each activation call is a module named after the program's
    module stack (functional.py), and those modules are the sites."""
    traced, found = trace_functional_sites(model)
    named: dict[nn.Module, Site] = {
        s.module: Site(s.name, s.module, s.activation, s.inplace, "function") for s in found
    }
    if isinstance(sites, str) and sites == "auto":
        return Selection(named, True, traced, traced)
    if callable(sites):
        return _by_predicate(model, sites)
    patterns = _patterns(sites)
    if not patterns:
        return Selection({}, False, model, output_only=True)
    chosen = {
        module: site
        for module, site in named.items()
        if any(site.name == p or fnmatch.fnmatchcase(site.name, p) for p in patterns)
    }
    if not chosen:
        names = [s.name for s in named.values()][:12]
        raise ProbeError(
            f"no site of {type(model).__name__} is named like {', '.join(map(repr, patterns))}; "
            f"its sites are: {', '.join(names)}"
        )
    return Selection(chosen, patterns, traced, traced, patterns=patterns)


def _by_predicate(model: nn.Module, sites: Callable[[str, nn.Module], bool]) -> Selection:
    chosen = {
        module: _module_site(name, module, "named")
        for name, module in model.named_modules()
        if sites(name, module)
    }
    if not chosen:
        raise NoProbeSitesError(f"the site predicate selected no module of {type(model).__name__}")
    return Selection(chosen, False, model)
