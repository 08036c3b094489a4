"""Panels that would look broken say what they mean: a uniform heatmap becomes a sentence, lines
that coincide get one."""

from __future__ import annotations

import pandas as pd

from variability.reports.uniform import (
    activation_sentence,
    coinciding_gradients,
    gradient_sentence,
    uniform_value,
)


def gradients(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"step": step, "site": site, "gradient_rms": value}
            for site, series in values.items()
            for step, value in enumerate(series)
        ]
    )


def test_a_uniform_figure_is_found_and_explained():
    probes = pd.DataFrame(
        {"site": ["han1", "han2", "output"], "activation_ratio": [1.0, 1.0, None]}
    )
    assert uniform_value(probes, "activation_ratio") == 1.0
    assert (
        uniform_value(probes.assign(activation_ratio=[1.0, 0.9, None]), "activation_ratio") is None
    )
    assert uniform_value(probes, "missing") is None
    text = activation_sentence(1.0, ["abs", "han"])
    assert "1 at every site and every recorded step (to within 0.005)" in text
    assert "no flat part" in text
    assert "no flat part" not in activation_sentence(1.0, ["sigmoid"])


def test_coinciding_gradient_lines_are_found_and_explained_for_han():
    same = gradients({"han1": [1.0, 0.5], "han2": [1.05, 0.52], "output": [3.0, 2.0]})
    apart = gradients({"act1": [1.0, 0.5], "act2": [0.1, 0.01]})
    assert coinciding_gradients(same) and not coinciding_gradients(apart)
    assert not coinciding_gradients(gradients({"han1": [1.0]}))  # one line coincides with nothing
    assert "orthogonal" in gradient_sentence("han") and "orthogonal" not in gradient_sentence("fc")
