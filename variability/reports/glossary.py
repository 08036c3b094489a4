"""The figures in plain words, printed in every report (docs/figures.md has the formulas)."""

from __future__ import annotations

from variability.probes import Thresholds

_LEVELS = Thresholds()

GLOSSARY: dict[str, str] = {
    "Probe site": "a place where the network applies a nonlinearity (an activation module, a "
    "functional call such as F.relu, or a module you named). Sites are listed in depth order.",
    "Activation ratio (AR)": "the share of (unit, input) pairs where the unit is active, i.e. its "
    "slope is at least tau times the activation's largest slope (ReLU: input above 0).",
    "Dead units": "units that are never active on any input of the probe set.",
    "Variability (V)": "how much a site's output changes across inputs, relative to its size: "
    "sqrt(sum of per-unit variances / sum of per-unit mean squares). 1 for zero-mean outputs, "
    "0 when every unit is constant. Scale-free.",
    "Collapsed / collapsing": "a site whose V is at most the collapse level "
    f"({_LEVELS.collapsed:g} by default) gives practically the same output for every input; "
    f"collapsing means V at most the collapsing level ({_LEVELS.collapsing:g} by default).",
    "Collapse to constants (C2C)": "the network's output is collapsed: every input gets the same "
    "prediction. The first collapsed site is where that collapse starts.",
    "Constant units": "units whose output std is at most the constant level "
    f"({_LEVELS.constant:g} by default) times the site's RMS.",
    "Activation shift": "mean over units of |E[z]| / sqrt(E[z^2]) of the pre-activation z: how far "
    "the units' inputs sit off zero (what LCW removes).",
    "Redundancy": "mean absolute correlation between the outputs of pairs of non-constant units.",
    "Gradient RMS": "root mean square of the gradient of the loss with respect to a site's output, "
    "recorded during training: small values mean vanishing gradients, which is not the same "
    "as collapse.",
    "V3": "mean absolute third difference of the standardised output over a regular grid of the "
    "input box: how wiggly the function drawn by the network is.",
    "Pieces per line": "along random segments between inputs, how many linear pieces the "
    "network draws on each segment: one more than the changes of its activation pattern.",
    "Parameter budget": "every family gets the largest width whose trainable parameter count "
    "does not exceed the budget at each depth; the exact counts are in the table, since deep "
    "narrow models cannot all hit the budget exactly.",
    "C2C rate": "the share of seeds whose freshly built model has a collapsed output on the "
    "probe set: 0 none, 1 all.",
    "Chosen on validation": "each model is evaluated on the validation split during training; "
    "the checkpoint with the best validation metric is kept and only then scored on the test "
    "split, so the test split plays no part in any choice.",
    "Learned function": "the chosen model's output at every point of a 2-D task's input grid, "
    "drawn as an image on the same scale as the target.",
}


def glossary_for(*names: str) -> dict[str, str]:
    return {name: GLOSSARY[name] for name in names} if names else dict(GLOSSARY)
