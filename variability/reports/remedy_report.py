"""The report of a remedy (``variability init MODEL --out FIXED --report DIR``): what changed,
and the probe of the model before and after, drawn side by side.

It takes the remedy as plain data (``Reinitialization.to_dict()``), so reports need not import
the remedy package (both sit on one layer of the package).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from variability.probes import ProbeResults
from variability.reports.figures.remedy import before_after
from variability.reports.figures.sites import site_profile
from variability.reports.glossary import glossary_for
from variability.reports.page import Page
from variability.reports.probe_report import sites_frame, verdict_text

OUTCOME_COLUMNS = {
    "site": "site",
    "layer": "layer",
    "status": "status",
    "how": "how",
    "changed_units": "units changed",
    "units": "units",
    "rms_before": "pre-act RMS before",
    "rms_after": "pre-act RMS after",
    "above_before": "z > 0 before",
    "above_after": "z > 0 after",
    "reason": "left unchanged because",
}


def build_remedy_page(
    before: ProbeResults,
    after: ProbeResults,
    remedy: Mapping[str, Any],
    *,
    title: str = "Remedy report",
    subtitle: str = "",
    provenance: dict[str, str] | None = None,
) -> Page:
    page = Page(title, subtitle)
    verdict = page.section("Verdict")
    verdict.paragraph(f"Before: {verdict_text(before)}")
    verdict.paragraph(f"After: {verdict_text(after)}")
    sites = list(remedy["sites"])
    for site in sites:
        if site["status"] == "failed":
            where = f" (layer {site['layer']})" if site["layer"] else ""
            verdict.note(f"Left unchanged: {site['site']}{where}: {site['reason']}")
    changes = page.section("What changed")
    frame = pd.DataFrame(sites)
    frame = frame[[c for c in OUTCOME_COLUMNS if c in frame]].rename(columns=OUTCOME_COLUMNS)
    for column in ("layer", "how", "left unchanged because"):
        frame[column] = frame[column].fillna("")
    changes.table(frame, caption="Per site, in depth order: the layer changed and how")
    changes.paragraph(
        f"Parameters changed: {', '.join(remedy['changed_parameters']) or 'none'}. Every other "
        "parameter is bit-identical to the input's."
    )
    figures = page.section("Before and after")
    names = [s.name for s in before.sites]
    outcomes = {site["site"]: site for site in sites}
    after_v = {s.name: s.variability for s in after.sites}
    figures.figure(
        before_after(
            names,
            [s.variability for s in before.sites],
            [after_v.get(n, math.nan) for n in names],
            [outcomes[n]["rms_before"] if n in outcomes else None for n in names],
            [outcomes[n]["rms_after"] if n in outcomes else None for n in names],
            target_rms=math.sqrt(remedy["second_moment"]),
            collapsed=after.thresholds.collapsed,
        ),
        "before_after",
        "Variability (top) and pre-activation RMS (bottom) per site, before and after.",
    )
    for label, results in (("before", before), ("after", after)):
        section = page.section(f"Sites {label}")
        section.table(sites_frame(results), caption=f"Figures per probe site, {label}")
        section.figure(
            site_profile(
                results.to_pandas().reset_index(),
                results.thresholds.collapsed,
                results.thresholds.collapsing,
            ),
            f"site_profile_{label}",
            f"Variability (top) and activation ratio and dead fraction (bottom), {label}.",
        )
    page.section("What the figures mean").definitions(
        glossary_for(
            "Probe site",
            "Activation ratio (AR)",
            "Dead units",
            "Variability (V)",
            "Collapsed / collapsing",
            "Collapse to constants (C2C)",
        )
    )
    details = {
        "method": remedy["method"],
        "target second moment": f"{remedy['second_moment']:g}",
        "target fraction above 0": f"{remedy['active_fraction']:g}",
        "rows centred first": str(remedy["center"]),
        "probe inputs": str(remedy["samples"]),
        **(provenance or {}),
    }
    page.section("How this report was made").table(
        pd.DataFrame({"item": list(details), "value": list(details.values())})
    )
    return page


def write_remedy_report(
    before: ProbeResults,
    after: ProbeResults,
    remedy: Mapping[str, Any],
    folder: str | os.PathLike[str],
    *,
    self_contained: bool = False,
    **page_options: object,
) -> Path:
    """Write the report folder; returns the path of its ``index.html``."""
    page = build_remedy_page(before, after, remedy, **page_options)  # type: ignore[arg-type]
    return page.write(Path(folder), self_contained=self_contained)
