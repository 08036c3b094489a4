"""What every reproduction shares: its options, its outcome, and how an outcome is written.

A reproduction is a function ``run(options, advance) -> Outcome`` plus ``units(options)``, the
number of work units it will report through ``advance`` (for the progress bar). The outcome
holds the tables, figures, settings and deviations; ``write_outcome`` turns it into a report
folder (``report/index.html`` and PNGs, through ``reports.page``) and ``results.json`` (every
per-seed record, so each figure of the report can be recomputed from it).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from variability.atomic import atomic_file
from variability.errors import UserError
from variability.experiments.jobs import Executor, run_jobs
from variability.reports.glossary import glossary_for
from variability.reports.page import Page
from variability.reports.provenance import command_line, provenance
from variability.runs.run_dir import json_safe

RESULTS_FILE = "results.json"
REPORT_FOLDER = "report"
FORMAT = "variability-reproduction"
FORMAT_VERSION = 1

Advance = Callable[[int], None]
"""``advance(n)``: n more work units are done."""


@dataclass(frozen=True)
class Options:
    """How to run a reproduction: its full or smoke size, seeds, device and worker processes.

    ``seeds`` replaces the reproduction's own number of seeds. ``workers``: independent models
    trained or probed at once, each in its own single-threaded process (None: the reproduction's
    choice for the device; 1: everything in this process). ``compare``: a finished comparison
    folder for the predictor to read instead of running one. ``folder``: the output folder;
    reproductions that train with the toolkit's trainer keep their run directories in
    ``folder/runs`` (a rerun with the same settings reuses the finished ones). ``executor``:
    where the models run (None: this machine's processes) and what a failure does to the others.
    """

    smoke: bool = False
    seeds: int | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workers: int | None = None
    compare: Path | None = None
    folder: Path = field(default_factory=lambda: Path("reproductions"))
    executor: Executor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.seeds is not None and (
            isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1
        ):
            raise UserError(f"seeds must be an integer >= 1, got {self.seeds!r}")
        if self.workers is not None and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise UserError(f"workers must be an integer >= 1, got {self.workers!r}")

    def seed_count(self, full: int, smoke: int) -> int:
        """The number of seeds: ``--seeds`` if given, else the full or the smoke default."""
        if self.seeds is not None:
            return self.seeds
        return smoke if self.smoke else full

    def pick(self, full: Any, smoke: Any) -> Any:
        return smoke if self.smoke else full

    @property
    def runs(self) -> Path:
        return self.folder / "runs"


@dataclass(frozen=True)
class Reproduction:
    """One reproduction: its name on the command line, what it reproduces, and how to run it."""

    name: str
    title: str
    paper: str
    units: Callable[[Options], int]
    run: Callable[[Options, Advance], Outcome]


@dataclass
class Outcome:
    """What a reproduction found, ready to print and to write as a report.

    ``claims``: one row per published claim, with columns ``claim``, ``published``, ``ours`` and
    ``holds`` (yes / no / partly, decided by the code from the measured figures). ``table``: the
    main table, printed in the terminal and shown first in the report. ``records``: the raw
    per-model records behind every figure (written to results.json). ``printed_tables``: more
    tables that the terminal shows after the main one (the report shows them too); ``tables``
    are in the report only.
    """

    name: str
    title: str
    paper: str
    claims: pd.DataFrame
    table: pd.DataFrame
    table_caption: str
    findings: list[str]
    settings: dict[str, Any]
    deviations: list[str]
    records: list[dict[str, Any]]
    figures: list[tuple[Figure | None, str, str]] = field(default_factory=list)
    tables: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    printed_tables: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    glossary: tuple[str, ...] = ()
    seconds: float | None = None
    smoke: bool = False


# --- small shared helpers ----------------------------------------------------------------------

HIDDEN_SITE = re.compile(r"^(?:act|han)(\d+)$")


def hidden_layer(site: str) -> int | None:
    """The hidden layer (1..L) whose output a built model's probe site is: ``act3`` (FC, LCW, and
    Han's first layer) and ``han3`` are layer 3; other sites (the output) give None."""
    match = HIDDEN_SITE.match(site)
    return int(match.group(1)) if match else None


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of the finite values."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan
    spread = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), spread


def run_models(
    function: Callable[[Any], Any],
    jobs: Sequence[Any],
    options: Options,
    advance: Advance,
    units: Callable[[Any], int] | None = None,
) -> list[Any]:
    """``run_jobs`` on the options' device and workers, advancing the progress bar by each
    finished job's units (1 unless ``units(job)`` says otherwise)."""
    return run_jobs(
        function,
        jobs,
        device=options.device,
        workers=options.workers,
        on_done=lambda job, _result: advance(1 if units is None else units(job)),
        executor=options.executor,
    )


def verdict(holds: bool | None) -> str:
    return "-" if holds is None else ("yes" if holds else "no")


def claims_frame(rows: Sequence[tuple[str, str, str, bool | str | None]]) -> pd.DataFrame:
    """The published-against-ours table from ``(claim, published, ours, holds)`` rows."""
    return pd.DataFrame(
        [
            {
                "claim": claim,
                "published": published,
                "ours": ours,
                "holds": holds if isinstance(holds, str) else verdict(holds),
            }
            for claim, published, ours, holds in rows
        ]
    )


# --- writing -----------------------------------------------------------------------------------


def build_page(outcome: Outcome) -> Page:
    """The report page: published against ours, findings, tables, figures, settings, deviations."""
    size = "smoke-size run (seconds; not the reproduction's figures)" if outcome.smoke else ""
    subtitle = f"{outcome.paper}" + (f" · {size}" if size else "")
    page = Page(f"Reproduction: {outcome.title}", subtitle)
    published = page.section("Published claims beside ours")
    published.paragraph(
        "Each row restates a claim of the paper and what this run measured; 'holds' is decided "
        "by the code from the measured figures, as described under each finding."
    )
    published.table(outcome.claims)
    found = page.section("What we find")
    for sentence in outcome.findings:
        found.paragraph(sentence)
    main = page.section("Results")
    main.table(outcome.table, caption=outcome.table_caption)
    for frame, caption in [*outcome.printed_tables, *outcome.tables]:
        main.table(frame, caption=caption)
    if outcome.figures:
        drawn = page.section("Figures")
        for figure, name, caption in outcome.figures:
            drawn.figure(figure, name, caption)
    settings = page.section("Settings")
    settings.definitions({k: _show(v) for k, v in outcome.settings.items()})
    deviations = page.section("Deviations from the paper's setup")
    for line in outcome.deviations:
        deviations.paragraph(line)
    if outcome.glossary:
        page.section("Definitions").definitions(glossary_for(*outcome.glossary))
    made = page.section("How this report was made")
    made.code(command_line())
    seconds = {"run time (s)": f"{outcome.seconds:.1f}"} if outcome.seconds is not None else {}
    made.definitions(provenance(**seconds))
    return page


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def results_document(outcome: Outcome) -> dict[str, Any]:
    """The content of results.json: settings, tables, every raw record, run time, versions."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": outcome.name,
        "title": outcome.title,
        "paper": outcome.paper,
        "smoke": outcome.smoke,
        "seconds": outcome.seconds,
        "command": command_line(),
        "provenance": provenance(),
        "settings": outcome.settings,
        "claims": outcome.claims.to_dict(orient="records"),
        "findings": outcome.findings,
        "deviations": outcome.deviations,
        "table": outcome.table.to_dict(orient="records"),
        "records": outcome.records,
    }


def write_outcome(outcome: Outcome, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/report/`` (atomically, through the page) and ``folder/results.json``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write to {folder}: permission denied")
    index = build_page(outcome).write(folder / REPORT_FOLDER)
    with atomic_file(folder / RESULTS_FILE) as stream:
        json.dump(json_safe(results_document(outcome)), stream, indent=1, allow_nan=False)
        stream.write("\n")
    return index


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "REPORT_FOLDER",
    "RESULTS_FILE",
    "Advance",
    "Options",
    "Outcome",
    "Reproduction",
    "build_page",
    "claims_frame",
    "hidden_layer",
    "mean_std",
    "results_document",
    "run_models",
    "write_outcome",
]
