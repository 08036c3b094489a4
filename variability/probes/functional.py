"""Activation calls of a ``torch.export`` program, made visible to hooks under their module names.

A program's ``.module()`` is an ``fx.GraphModule`` whose flat graph calls ATen operators; the
module each call came from survives only in the nodes' ``nn_module_stack``. So for a GraphModule
(and only there: every other model is probed while it runs, finder.py) every call of a known
activation is replaced by a small ``FunctionalSite`` module doing the same call, named after that
stack, and the rewritten graph runs in place of the program's ``forward`` while probing. It shares
every parameter and submodule with the program.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from variability.probes.activations import Activation, activation_for_call
from variability.probes.errors import TraceError


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
    return "", base


def trace_functional_sites(model: fx.GraphModule) -> tuple[fx.GraphModule, list[TracedSite]]:
    """A copy of ``model``'s graph with a FunctionalSite in place of each known activation call."""
    try:
        traced = fx.GraphModule(model, copy.deepcopy(model.graph), type(model).__name__)
    except Exception as error:  # fx raises many types; all mean the same to the user
        raise TraceError(
            f"the graph of {type(model).__name__} could not be copied to find its activation "
            f"calls ({type(error).__name__}: {str(error).strip()[:200]}). Name the sites to "
            "probe instead: sites=['...'] takes module names or glob patterns."
        ) from None
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
