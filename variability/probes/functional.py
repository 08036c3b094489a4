"""Functional activations (``F.relu(x)``, ``torch.abs(x)``, ``x.tanh()``) made visible to hooks.

A model that applies its nonlinearities as function calls has no module to hook. We trace it with
torch.fx, replace every call of a known activation by a small ``FunctionalSite`` module doing the
same call, and run the traced graph in place of the model's ``forward`` while probing. The traced
graph shares every parameter and submodule with the model, so training through it trains the model.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from variability.probes.activations import Activation, activation_for_call
from variability.probes.errors import TraceError

_PATH_KEY = "variability_module_path"


class FunctionalSite(nn.Module):
    """Performs one functional activation call, so that module hooks can observe it."""

    def __init__(self, op: str, target: Any, label: str) -> None:
        super().__init__()
        self.op = op
        self.target = target
        self.label = label

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.op == "call_method":
            return getattr(args[0], self.target)(*args[1:], **kwargs)
        return self.target(*args, **kwargs)

    def extra_repr(self) -> str:
        return self.label


class _PathTracer(fx.Tracer):
    """An fx tracer that remembers, for every node, the module whose forward created it."""

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[str] = []

    def call_module(self, m: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        self._paths.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._paths.pop()

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta[_PATH_KEY] = self._paths[-1] if self._paths else ""
        return node


@dataclass
class TracedSite:
    name: str
    module: FunctionalSite
    activation: Activation
    inplace: bool


def _call_name(op: str, target: Any) -> str:
    if op == "call_method":
        return str(target).rstrip("_")
    name = getattr(target, "_opname", None) or getattr(target, "__name__", str(target))
    return str(name).rstrip("_")


def _site_base(node: fx.Node) -> tuple[str, str]:
    """(module path, call name) of a node; graphs from torch.export carry their module stack."""
    base = _call_name(node.op, node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        path, owner = list(stack.values())[-1]
        owner_name = str(getattr(owner, "__name__", owner)).rsplit(".", 1)[-1]
        if path and owner_name.lower().startswith(base.split(".")[-1].lower()):
            return path, ""  # the call is an activation module's own forward: name it so
        return path, base
    return node.meta.get(_PATH_KEY, ""), base


def _graph_of(model: nn.Module) -> tuple[nn.Module, fx.Graph]:
    if isinstance(model, fx.GraphModule):
        # already a graph (torch.export's .module(), an earlier fx trace): keep its node metadata
        return model, copy.deepcopy(model.graph)
    tracer = _PathTracer()
    graph = tracer.trace(model)
    return tracer.root, graph


def trace_functional_sites(model: nn.Module) -> tuple[fx.GraphModule, list[TracedSite]]:
    """Trace ``model`` and put a FunctionalSite in place of each known activation call."""
    try:
        root, graph = _graph_of(model)
    except Exception as error:  # fx raises many types; all mean the same to the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TraceError(
            f"{type(model).__name__} has no activation modules, and torch.fx could not trace it to "
            f"find functional activations ({type(error).__name__}: {reason}). Name the sites to "
            "probe instead: Probe(model, sites=['encoder.block1', 'head.*']) takes module names, "
            "glob patterns or a predicate (name, module) -> bool; each named module's output is "
            "probed."
        ) from None
    traced = fx.GraphModule(root, graph, type(model).__name__)
    found: list[tuple[fx.Node, Activation, bool, str]] = []
    for node in traced.graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        try:
            rule = activation_for_call(node.op, node.target, tuple(node.args), dict(node.kwargs))
        except Exception:
            rule = None  # an argument only known at run time: not a site we can judge
        if rule is None:
            continue
        path, base = _site_base(node)
        name = ".".join(part for part in (path, base) if part)
        found.append((node, rule[0], rule[1], name))
    repeats = Counter(name for *_, name in found)
    seen: Counter[str] = Counter()
    sites: list[TracedSite] = []
    for number, (node, activation, inplace, name) in enumerate(found):
        if repeats[name] > 1:
            name, seen[name] = f"{name}[{seen[name]}]", seen[name] + 1
        attribute = f"_variability_site_{number}"
        site = FunctionalSite(node.op, node.target, name)
        traced.add_submodule(attribute, site)
        with traced.graph.inserting_after(node):
            replacement = traced.graph.call_module(attribute, tuple(node.args), dict(node.kwargs))
        node.replace_all_uses_with(replacement)
        traced.graph.erase_node(node)
        sites.append(TracedSite(name, site, activation, inplace))
    traced.recompile()
    return traced, sites
