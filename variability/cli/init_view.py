"""What ``variability init`` prints: each site's figures before and after the remedy, side by
side, then both verdicts and the sites left unchanged."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from variability.cli.probe_view import STATUS_STYLES, thresholds_line, verdict_line
from variability.probes import ProbeResults, SiteResult
from variability.remedy import Reinitialization, SiteOutcome

ARROW = " -> "


def _number(value: float | None, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _percent(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _pair(before: str, after: str) -> str:
    return f"{before}{ARROW}{after}"


def _status(before: SiteResult | None, after: SiteResult | None) -> Text:
    text = Text()
    first = "-" if before is None else before.status
    last = "-" if after is None else after.status
    text.append(first, style=STATUS_STYLES.get(first, ""))
    text.append(ARROW)
    text.append(last, style=STATUS_STYLES.get(last, ""))
    return text


def _row(
    name: str,
    before: SiteResult | None,
    after: SiteResult | None,
    outcome: SiteOutcome | None,
) -> list[str | Text]:
    def figure(site: SiteResult | None, attribute: str, spec: str) -> str:
        value = None if site is None else getattr(site, attribute)
        return _percent(value) if spec == "%" else _number(value, spec)

    layer = "-" if outcome is None else (outcome.layer or "none")
    if outcome is not None and outcome.status != "changed":
        layer += f" ({outcome.status})"
    rms = ("-", "-")
    if outcome is not None:
        rms = (_number(outcome.rms_before, ".3g"), _number(outcome.rms_after, ".3g"))
    return [
        name,
        layer,
        _pair(figure(before, "activation_ratio", ".3f"), figure(after, "activation_ratio", ".3f")),
        _pair(figure(before, "dead_fraction", "%"), figure(after, "dead_fraction", "%")),
        _pair(figure(before, "variability", ".3g"), figure(after, "variability", ".3g")),
        _pair(*rms),
        _status(before, after),
    ]


def comparison_table(before: ProbeResults, after: ProbeResults, remedy: Reinitialization) -> Table:
    """One row per site in depth order (figures before -> after), then the output's row."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("site", overflow="fold")
    table.add_column("layer changed", overflow="fold")
    for header in ("AR", "dead", "V", "pre-act RMS"):
        table.add_column(header, justify="right")
    table.add_column("status")
    first = {s.name: s for s in before.sites}
    last = {s.name: s for s in after.sites}
    outcomes = {o.site: o for o in remedy.sites}
    names = list(first) + [n for n in last if n not in first]
    for name in names:
        table.add_row(*_row(name, first.get(name), last.get(name), outcomes.get(name)))
    if before.output is not None or after.output is not None:
        table.add_section()
        table.add_row(*_row("output", before.output, after.output, None))
    return table


def print_remedy(
    console: Console,
    before: ProbeResults,
    after: ProbeResults,
    remedy: Reinitialization,
    *,
    header: list[str],
    notes: list[str],
) -> None:
    for line in header:
        console.print(line, highlight=False, markup=False)
    for note in notes:
        console.print(Text("note: ", style="yellow").append(note, style=""), highlight=False)
    console.print()
    console.print(comparison_table(before, after, remedy))
    console.print(Text("before ").append(verdict_line(before)), highlight=False)
    console.print(Text("after  ").append(verdict_line(after)), highlight=False)
    console.print(thresholds_line(after), highlight=False, style="dim")
    for outcome in remedy.failed:
        console.print(
            Text("left unchanged: ", style="yellow").append(outcome.line(), style=""),
            highlight=False,
        )


def summary_line(before: ProbeResults, after: ProbeResults, remedy: Reinitialization) -> str:
    """One line for --quiet: what changed, and the verdict before and after."""

    def c2c(results: ProbeResults) -> str:
        return "collapsed" if results.network_collapsed else "not collapsed"

    changed = sum(1 for s in remedy.sites if s.status == "changed")
    return (
        f"{remedy.method}: {changed} of {len(remedy.sites)} sites changed; network "
        f"{c2c(before)} before, {c2c(after)} after"
    )
