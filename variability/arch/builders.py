"""Build FC, LCW and Han models from a small, JSON-serialisable spec.

Module names are readable and in depth order, so a probe site's name says its depth:

- FC:  ``linear1, act1, linear2, act2, ..., linearL, actL, out``
- LCW: ``linear1, act1, lcw2, act2, ..., lcwL, actL, out`` (``lcwK`` an LCWLinear)
- Han: ``linear1, han1, han2, ..., hanL, out`` (``han1`` is the first layer's Abs; each later
  ``hanK`` a HanLayer, which applies its own abs); in other layouts (layouts.py) a dense hidden
  layer K is ``linearK, hanK`` (``hanK`` its Abs): ``linear1, han1, linear2, han2, han3, ...,
  han19, linear20, han20, out`` for "published". Every hidden layer's site is ``hanK``.

Layer number K is the hidden layer's index, 1..L.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from variability.arch.errors import SpecError
from variability.arch.han import HanLayer
from variability.arch.init import (
    ACTIVATIONS,
    INITS,
    activation_gain,
    init_linear_,
    make_activation,
    orthogonal_,
)
from variability.arch.layouts import DEFAULT_DENSE, Layout, dense_layers_for
from variability.arch.lcw import LCWLinear
from variability.arch.params import check_family, check_size, min_width, solve_width

__all__ = ["DEFAULT_ACTIVATION", "DEFAULT_INIT", "Network", "build_model", "rebuild"]

DEFAULT_ACTIVATION: dict[str, str] = {"fc": "relu", "lcw": "sigmoid", "han": "abs"}
DEFAULT_INIT: dict[str, str] = {"fc": "kaiming", "lcw": "kaiming", "han": "orthogonal"}

SPEC_KEYS = ("family", "d_in", "d_out", "depth", "width", "activation", "init", "seed")
OPTIONAL_SPEC_KEYS = ("dense_layers",)
"""Stored only when not the default, so older specs rebuild the same model."""


class Network(nn.Sequential):
    """A built model: an ``nn.Sequential`` of named layers plus the ``spec`` that rebuilds it.

    ``build_model(**net.spec)`` returns a network with the same architecture and, because the spec
    records the seed, the same initial weights.
    """

    def __init__(self, layers: OrderedDict[str, nn.Module], spec: dict[str, Any]) -> None:
        super().__init__(layers)
        self.spec: dict[str, Any] = dict(spec)

    @property
    def family(self) -> str:
        return str(self.spec["family"])

    @property
    def dense_layers(self) -> tuple[int, ...]:
        """The hidden layers that are ``Linear`` + activation (all of them outside Han nets)."""
        depth = int(self.spec["depth"])
        if self.family != "han":
            return tuple(range(1, depth + 1))
        return tuple(self.spec.get("dense_layers", DEFAULT_DENSE))

    def hidden_sites(self) -> list[str]:
        """Names of the modules whose outputs are the hidden layers, in depth order."""
        depth = int(self.spec["depth"])
        if self.family == "han":
            return [f"han{k}" for k in range(1, depth + 1)]
        return [f"act{k}" for k in range(1, depth + 1)]


def build_model(
    family: str,
    d_in: int,
    d_out: int,
    depth: int,
    width: int | None = None,
    params: int | None = None,
    activation: str | None = None,
    init: str | None = None,
    seed: int | None = None,
    layout: Layout = None,
    dense_layers: Sequence[int] | None = None,
) -> Network:
    """Build a model of ``family`` ("fc", "lcw", "han") with ``depth`` hidden layers.

    Give either ``width`` or a parameter budget ``params`` (the solver then picks the largest
    width within budget, see ``solve_width``). Defaults per family: FC ReLU with Kaiming-normal
    weights; LCW sigmoid with the LCW rule (Kaiming-scale rows, mean removed); Han abs with
    orthogonal Linear layers. ``init`` "torch-kaiming" / "torch-orthogonal" initialise every
    Linear layer as PyTorch's own functions do (see init.py). ``layout`` (Han only): "default",
    "published" or the dense hidden layers, e.g. ``(1, 2, 20)``; ``dense_layers`` is the same as
    a tuple (what specs store). ``seed=None`` draws a seed from torch's global generator and
    records it, so the returned ``spec`` always rebuilds the same weights.
    """
    family = check_family(str(family).lower())
    d_in, d_out = check_size("d_in", d_in), check_size("d_out", d_out)
    depth = check_size("depth", depth)
    if width is None and params is None:
        raise SpecError("build_model needs a width or a parameter budget (params=...)")
    if width is not None and params is not None:
        raise SpecError("give build_model a width or a parameter budget, not both")
    if layout is not None and dense_layers is not None:
        raise SpecError("give build_model a layout or dense_layers, not both")
    dense = dense_layers_for(family, depth, dense_layers if layout is None else layout)
    if width is None:
        width = solve_width(
            family, check_size("params", params), depth, d_in, d_out, dense_layers=dense
        )
    width = check_size("width", width, min_width(family, depth))

    activation = DEFAULT_ACTIVATION[family] if activation is None else str(activation)
    if activation not in ACTIVATIONS:
        raise SpecError(
            f"unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))}"
        )
    if family == "han" and activation != "abs":
        raise SpecError(f"the Han family uses abs (its layers are |Hx + b|), not {activation!r}")
    init = DEFAULT_INIT[family] if init is None else str(init)
    if init not in INITS:
        raise SpecError(f"unknown init {init!r}; known: {', '.join(INITS)}")
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    seed = check_size("seed", seed, 0)

    spec = {
        "family": family,
        "d_in": d_in,
        "d_out": d_out,
        "depth": depth,
        "width": width,
        "activation": activation,
        "init": init,
        "seed": seed,
    }
    if dense != DEFAULT_DENSE:
        spec["dense_layers"] = list(dense)
    generator = torch.Generator().manual_seed(seed)
    gain = activation_gain(activation)
    layers: OrderedDict[str, nn.Module] = OrderedDict()

    def linear(fan_in: int, fan_out: int, layer_gain: float) -> nn.Linear:
        # nn.Linear's own initialisation draws from the global RNG: its state is put back, so
        # building a model changes nothing outside it. (Not the meta device: its first use
        # imports a second of torch, longer than a small model's whole probe.)
        with torch.random.fork_rng(devices=[]):
            layer = nn.Linear(fan_in, fan_out)
        init_linear_(layer, init, layer_gain, generator)
        return layer

    # The first layer sees the data, not a nonlinearity's output: gain 1 (He et al.'s own rule).
    layers["linear1"] = linear(d_in, width, 1.0)
    layers["han1" if family == "han" else "act1"] = make_activation(activation)
    for k in range(2, depth + 1):
        if family == "fc" or (family == "han" and k in dense):
            layers[f"linear{k}"] = linear(width, width, gain)
            layers[f"han{k}" if family == "han" else f"act{k}"] = make_activation(activation)
        elif family == "lcw":
            lcw = LCWLinear(width, width, gain=gain, generator=generator)
            if init in ("orthogonal", "torch-orthogonal"):
                orthogonal_(lcw.v, gain, generator)
            layers[f"lcw{k}"] = lcw
            layers[f"act{k}"] = make_activation(activation)
        else:
            layers[f"han{k}"] = HanLayer(width, generator=generator)
    layers["out"] = linear(width, d_out, gain)
    return Network(layers, spec)


def rebuild(spec: dict[str, Any]) -> Network:
    """``build_model(**spec)`` after checking that the spec has exactly the keys it should."""
    if not isinstance(spec, dict):
        raise SpecError(f"a model spec is a dict, got {type(spec).__name__}")
    missing = [k for k in SPEC_KEYS if k not in spec]
    extra = [k for k in spec if k not in SPEC_KEYS + OPTIONAL_SPEC_KEYS]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(map(str, extra))}")
        raise SpecError(f"not a model spec ({'; '.join(parts)})")
    return build_model(**spec)
