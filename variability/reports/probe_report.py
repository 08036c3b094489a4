"""The report of one probe (``variability probe MODEL --report DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from variability.probes import ProbeResults
from variability.reports.figures.sites import site_profile, unit_activation_spread
from variability.reports.glossary import glossary_for
from variability.reports.page import Page
from variability.reports.text import percent, shape_text

TABLE_COLUMNS = {
    "name": "site",
    "layer": "layer",
    "shape": "shape",
    "units": "units",
    "activation_ratio": "AR",
    "dead_fraction": "dead",
    "variability": "V",
    "constant_fraction": "constant",
    "activation_shift": "shift",
    "redundancy": "redundancy",
    "nonfinite": "NaN/Inf",
    "status": "status",
}
PERCENT_COLUMNS = ("dead_fraction", "constant_fraction")
"""Shares of a site's units, shown as percentages, as the terminal shows them."""


def sites_frame(results: ProbeResults) -> pd.DataFrame:
    """One row per site, the output last, with the columns the report shows."""
    frame = results.to_pandas().reset_index()
    for column in PERCENT_COLUMNS:
        frame[column] = [percent(v) for v in frame[column]]
    frame["shape"] = [shape_text(v) for v in frame["shape"]]
    return frame[[c for c in TABLE_COLUMNS if c in frame]].rename(columns=TABLE_COLUMNS)


def verdict_text(results: ProbeResults) -> str:
    output = results.output
    if output is None:
        return "The model returned no tensor, so there is no verdict on its output."
    thresholds = results.thresholds
    if results.network_collapsed:
        first = results.first_collapsed_site
        where = f" The collapse starts at site {first}." if first else ""
        return (
            f"Collapsed to a constant: the output's variability is {output.variability:.3g} "
            f"(collapsed at V <= {thresholds.collapsed:g}), so every probe input gets "
            f"practically the same output.{where}"
        )
    if results.network_collapsed is None:
        return (
            f"No verdict: no finite value reached the output over {results.samples} probe "
            "inputs, so its variability is not defined."
        )
    return (
        f"Not collapsed: the output's variability is {output.variability:.3g} ({output.status}; "
        f"collapsed at V <= {thresholds.collapsed:g}, collapsing at V <= "
        f"{thresholds.collapsing:g}), over {results.samples} probe inputs."
    )


def build_probe_page(
    results: ProbeResults,
    *,
    title: str = "Probe report",
    subtitle: str = "",
    hints: list[str] | None = None,
    provenance: dict[str, str] | None = None,
) -> Page:
    page = Page(title, subtitle)
    verdict = page.section("Verdict")
    verdict.paragraph(verdict_text(results))
    for hint in hints or []:
        verdict.paragraph(hint)
    table = page.section("Sites")
    table.table(sites_frame(results), caption="Figures per probe site, in depth order")
    if results.unused_sites:
        table.note(f"Sites that never ran: {', '.join(results.unused_sites)}")
    figures = page.section("Figures")
    frame = results.to_pandas().reset_index()
    figures.figure(
        site_profile(frame, results.thresholds.collapsed, results.thresholds.collapsing),
        "site_profile",
        "Variability (top, log scale) and activation ratio and dead fraction (bottom) per site.",
    )
    figures.figure(
        unit_activation_spread(
            [s.name for s in results.sites], [s.unit_activation_ratio for s in results.sites]
        ),
        "unit_activation",
        "Spread of the per-unit activation ratio at each site.",
    )
    page.section("What the figures mean").definitions(
        glossary_for(
            "Probe site",
            "Activation ratio (AR)",
            "Dead units",
            "Variability (V)",
            "Collapsed / collapsing",
            "Collapse to constants (C2C)",
            "Constant units",
            "Activation shift",
            "Redundancy",
        )
    )
    thresholds = results.thresholds
    details = {
        "tau": f"{thresholds.tau:g}",
        "collapse levels": f"collapsed V <= {thresholds.collapsed:g}, "
        f"collapsing V <= {thresholds.collapsing:g}",
        "constant units": f"std <= {thresholds.constant:g} x the site's RMS",
        **(provenance or {}),
    }
    page.section("How this report was made").table(
        pd.DataFrame({"item": list(details), "value": list(details.values())})
    )
    return page


def write_probe_report(
    results: ProbeResults,
    folder: str | os.PathLike[str],
    *,
    self_contained: bool = False,
    **page_options: object,
) -> Path:
    """Write the report folder; returns the path of its ``index.html``."""
    page = build_probe_page(results, **page_options)  # type: ignore[arg-type]
    return page.write(Path(folder), self_contained=self_contained)
