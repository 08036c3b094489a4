"""Panels that would look broken: one colour all over, or lines drawn on top of each other.

A heatmap whose every cell holds the same value, or a line per site where all lines coincide,
is a finding, not a fault; a reader needs the sentence that says so. The reports fold a uniform
heatmap into that sentence and keep coinciding lines with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["activation_sentence", "coinciding_gradients", "gradient_sentence", "uniform_value"]

NO_FLAT_PART = ("abs", "han")
"""Activations active wherever the pre-activation is not 0."""
COINCIDE = 1.1
"""Lines whose largest value is within this factor of the smallest, at every step, coincide."""


SAME_COLOUR = 0.005
"""Values of a 0-to-1 colour scale this close together are drawn in one colour: the heatmap of
an activation ratio between 0.9998 and 1 (a ReLU-free net whose first layer sees one input at
exactly 0) is as uniform to the eye as one of exactly 1."""


def uniform_value(probes: pd.DataFrame, column: str, within: float = SAME_COLOUR) -> float | None:
    """The value ``column`` takes in every row that has it (their mean, when all lie within
    ``within`` of each other), or None if it varies more (or no row has it)."""
    if probes.empty or column not in probes:
        return None
    values = probes[column].dropna().to_numpy(dtype=float)
    if values.size == 0 or np.ptp(values) > within:
        return None
    return float(values.mean())


def activation_sentence(value: float, kinds: list[str]) -> str:
    """Why the activation ratio is the same at every site and step, for the sites' kinds."""
    text = (
        f"The activation ratio is {value:.3g} at every site and every recorded step (to within "
        f"{SAME_COLOUR:g}), so its heatmap, one colour all over, is not drawn."
    )
    if value >= 1.0 - SAME_COLOUR and kinds and all(kind in NO_FLAT_PART for kind in kinds):
        text += (
            " Abs and Han units are active wherever their pre-activation is not 0: these "
            "activations have no flat part, so no unit ever switches off."
        )
    elif value >= 1.0 - SAME_COLOUR:
        text += " Every unit was active on (almost) every input."
    return text


def coinciding_gradients(batch: pd.DataFrame) -> bool:
    """Whether the hidden sites' gradient RMS lines lie on top of each other at every step."""
    needed = {"step", "site", "gradient_rms"}
    if batch.empty or not needed <= set(batch.columns):
        return False
    hidden = batch[(batch["site"] != "output") & (batch["gradient_rms"] > 0)]
    if hidden["site"].nunique() < 2:
        return False
    spread = hidden.groupby("step")["gradient_rms"].agg(["min", "max"])
    return bool((spread["max"] <= COINCIDE * spread["min"]).all())


def gradient_sentence(family: str | None) -> str:
    """Why the gradient RMS lines coincide."""
    text = (
        "The lines lie on top of each other: the gradient reaching every hidden site has the "
        f"same size (within {COINCIDE - 1:.0%}) at every recorded step, so none vanishes."
    )
    if family == "han":
        text += (
            " That is what Han layers do: each is orthogonal almost everywhere, so it passes the "
            "gradient back with its size unchanged."
        )
    return text
