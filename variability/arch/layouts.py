"""Which hidden layers of a Han network are dense: the family's layouts.

A Han network's hidden layer k (1..L) is either *dense*, ``Linear(., w)`` followed by abs, or a
Han layer ``|H x + b|``. Layer 1 maps the data to the hidden width, so it is always dense.

- ``"default"``: only layer 1 is dense (DEFINITIONS.md's Han family): the fewest parameters.
- ``"published"``: layers 1, 2 and L are dense, as in Yu & Zhang's code for "HanNet 20 x 30"
  (3,032 parameters with two inputs and two outputs).

A layout may also be given as the set of dense layers itself, ``(1, 2, 20)``. Specs store the
dense layers (``dense_layers``), never the layout's name, and only when they differ from the
default, so specs written before layouts existed still rebuild the same model.
"""

from __future__ import annotations

from collections.abc import Sequence

from variability.arch.errors import SpecError

__all__ = ["DEFAULT_DENSE", "HAN_LAYOUTS", "dense_layers_for"]

HAN_LAYOUTS = ("default", "published")
DEFAULT_DENSE: tuple[int, ...] = (1,)

Layout = str | Sequence[int] | None


def dense_layers_for(family: str, depth: int, layout: Layout) -> tuple[int, ...]:
    """The sorted dense hidden layers of a ``family`` model of ``depth`` under ``layout``.

    Only the Han family has a layout; every hidden layer of FC and LCW is dense already.
    """
    if layout is None or layout == "default":
        return DEFAULT_DENSE
    if family != "han":
        raise SpecError(f"layouts choose the dense layers of Han networks, not of {family}")
    if isinstance(layout, str):
        if layout == "published":
            return tuple(sorted({1, 2, depth} & set(range(1, depth + 1))))
        raise SpecError(f"unknown Han layout {layout!r}; known: {', '.join(HAN_LAYOUTS)}")
    layers = set()
    for layer in layout:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= depth:
            raise SpecError(
                f"dense layers are hidden-layer numbers from 1 to the depth {depth}, got {layer!r}"
            )
        layers.add(int(layer))
    if 1 not in layers:
        raise SpecError("hidden layer 1 maps the inputs to the hidden width: it must be dense")
    return tuple(sorted(layers))
