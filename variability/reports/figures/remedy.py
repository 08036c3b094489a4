"""Figures of a remedy: each site's variability and pre-activation RMS before and after."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from variability.reports.style import PALETTE, STATUS_COLOURS, apply_theme, note_floor


def before_after(
    names: list[str],
    v_before: list[float],
    v_after: list[float],
    rms_before: list[float | None],
    rms_after: list[float | None],
    *,
    target_rms: float,
    collapsed: float,
) -> Figure | None:
    """Top: V per site (log) before and after; bottom: the pre-activation RMS (log) before and
    after, with the target. ``names`` in depth order, the output's V last if given."""
    if not names:
        return None
    apply_theme()
    x = np.arange(len(names))
    step = max(1, len(names) // 24)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, 0.28 * len(names) + 3), 6), sharex=True
    )
    floor = collapsed / 10
    for values, label, colour in ((v_before, "before", PALETTE[7]), (v_after, "after", PALETTE[0])):
        top.plot(x, np.clip(np.asarray(values, dtype=float), floor, None), marker="o",
                 label=label, color=colour)  # fmt: skip
    top.axhline(collapsed, color=STATUS_COLOURS["collapsed"], linestyle="--", linewidth=1)
    top.set_yscale("log")
    top.set_ylabel("variability V (log)")
    top.set_title("Variability per site before and after (dashed: collapsed level)")
    note_floor(top, list(v_before) + list(v_after), floor)
    top.legend(loc="best")
    rms_floor = target_rms * 1e-6
    clipped = False
    for rms_values, label, colour in (
        (rms_before, "before", PALETTE[7]),
        (rms_after, "after", PALETTE[0]),
    ):
        data = np.array([np.nan if v is None else v for v in rms_values], dtype=float)
        clipped |= bool((data[np.isfinite(data)] < rms_floor).any())
        bottom.plot(x, np.clip(data, rms_floor, None), marker="s", label=label, color=colour)
    if clipped:
        bottom.text(0.99, 0.04, f"RMS below {rms_floor:g} (or 0) drawn at {rms_floor:g}",
                    transform=bottom.transAxes, ha="right", va="bottom", fontsize=8)  # fmt: skip
    bottom.axhline(target_rms, color="#555555", linestyle=":", linewidth=1, label="target")
    bottom.set_yscale("log")
    bottom.set_ylabel("pre-activation RMS (log)")
    bottom.legend(loc="best")
    bottom.set_xticks(x[::step])
    bottom.set_xticklabels(names[::step], rotation=60, ha="right")
    bottom.set_xlabel("probe site (depth order)")
    figure.tight_layout()
    return figure
