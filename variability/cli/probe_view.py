"""What ``variability probe`` prints: the site table, the verdict and the diagnosis (rich)."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from variability.probes import ProbeResults, SiteResult, Status
from variability.reports.diagnosis import SHIFT_LEVEL, Hint
from variability.reports.text import percent, shape_text

__all__ = ["STATUS_STYLES", "print_diagnosis", "print_probe", "site_table", "verdict_line"]

STATUS_STYLES = {
    "healthy": "green",
    "collapsing": "yellow",
    "collapsed": "bold red",
    "dead units": "yellow",
    "no data": "dim",
}


def _number(value: float | None, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _row(site: SiteResult, nonfinite: bool) -> list[str | Text]:
    seen = site.status != Status.NO_DATA  # no finite value reached it: no unit can be called dead
    cells: list[str | Text] = [
        site.name,
        site.layer or site.kind,
        shape_text(site.shape),
        str(site.units),
        _number(site.activation_ratio, ".3f"),
        percent(site.dead_fraction if seen else None),
        _number(site.variability, ".3g"),
        percent(site.constant_fraction),
        _number(site.activation_shift, ".2f"),
    ]
    if nonfinite:
        cells.append(str(site.nonfinite))
    cells.append(Text(site.status, style=STATUS_STYLES.get(site.status, "")))
    return cells


def site_table(results: ProbeResults) -> Table:
    """One row per site in depth order, then the output's row. Names, layers and statuses are
    never cut: where the terminal is too narrow, a name folds onto a second line."""
    nonfinite = any(s.nonfinite for s in results.all_sites())
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("site", overflow="fold")
    table.add_column("layer", overflow="fold")
    table.add_column("shape", overflow="fold")
    for header in ("units", "AR", "dead", "V", "constant", "shift"):
        table.add_column(header, justify="right", no_wrap=True)
    if nonfinite:
        table.add_column("NaN/Inf", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for site in results.sites:
        table.add_row(*_row(site, nonfinite))
    if results.output is not None:
        table.add_section()
        table.add_row(*_row(results.output, nonfinite))
    return table


LEGEND = (
    "AR: activation ratio, the share of (unit, input) pairs where the unit is active; dead: units "
    "never active on any probe input; V: variability, how much the site's output varies with the "
    "input (0: constant); constant: units whose output does not vary; shift: LCW's activation "
    "shift of the pre-activations (0 to 1). shape: (N,...), N the batch."
)
"""The site table's columns in words, printed under it (docs/figures.md defines each)."""


def verdict_line(results: ProbeResults) -> Text:
    """Output V and its status, network C2C yes/no, first collapsed site."""
    output = results.output
    line = Text("verdict: ", style="bold")
    if output is None:
        line.append("the model returned no tensor, so there is no verdict on its output")
        return line
    line.append(f"output V {_number(output.variability, '.3g')} (")
    line.append(output.status, style=STATUS_STYLES.get(output.status, ""))
    line.append("), network C2C: ")
    collapsed = bool(results.network_collapsed)
    if results.network_collapsed is None:
        line.append("unknown (no finite output value)", style="yellow")
    else:
        line.append("yes" if collapsed else "no", style="bold red" if collapsed else "green")
    line.append(f", first collapsed site: {results.first_collapsed_site or 'none'}")
    return line


def thresholds_line(results: ProbeResults) -> str:
    t = results.thresholds
    return (
        f"{results.samples} probe inputs; collapsed at V <= {t.collapsed:g}, collapsing at "
        f"V <= {t.collapsing:g}, active where |phi'(z)| >= {t.tau:g} max|phi'|, constant "
        f"where std <= {t.constant:g} RMS"
    )


def print_diagnosis(console: Console, hints: list[Hint], dead_level: float) -> None:
    console.print(Text("diagnosis:", style="bold"))
    if not hints:
        console.print(
            "  nothing stands out: no site collapsing, none with "
            f"{100 * dead_level:.0f}% of its units dead, no sigmoid-like site with an "
            f"activation shift of {SHIFT_LEVEL:g} or more, no NaN/Inf.",
            highlight=False,
        )
    for hint in hints:
        console.print(f"  - {hint.finding}", highlight=False)
        console.print(f"    {hint.advice}", highlight=False, style="italic")


def print_probe(
    console: Console,
    results: ProbeResults,
    hints: list[Hint],
    *,
    header: list[str],
    notes: list[str],
) -> None:
    """The full human output: header, notes, table, verdict, diagnosis."""
    for line in header:
        console.print(line, highlight=False, markup=False)
    for note in notes:
        console.print(Text("note: ", style="yellow").append(note, style=""), highlight=False)
    console.print()
    if results.sites or results.output is not None:
        console.print(site_table(results))
        console.print(LEGEND, style="dim", highlight=False)
    console.print(verdict_line(results), highlight=False)
    console.print(thresholds_line(results), highlight=False, style="dim")
    print_diagnosis(console, hints, results.thresholds.dead)
