"""``variability reproduce NAME``: one of the papers' results, reproduced with the toolkit.

Prints the result table and the published claims beside ours, and writes a report folder
(``OUT/report/index.html`` with PNG figures) and ``OUT/results.json``. docs/reproductions.md
describes each reproduction, its settings, our figures and every deviation from the papers.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich import box
from rich.table import Table

from variability.cli.console import progress_bar, reports_user_errors, stderr, stdout
from variability.cli.executor_options import (
    ExecutorOption,
    FailFastOption,
    RayAddressOption,
    chosen_executor,
    report_failures,
)
from variability.errors import UserError
from variability.experiments.jobs import JobsFailed
from variability.experiments.reproductions import REPRODUCTIONS, Options, Outcome, write_outcome

__all__ = ["reproduce"]

EXIT_INTERRUPTED = 130
WIDE = 140


@reports_user_errors
def reproduce(
    name: Annotated[
        str,
        typer.Argument(
            help="Which reproduction: " + ", ".join(REPRODUCTIONS) + ".", metavar="NAME"
        ),
    ],
    smoke: Annotated[
        bool,
        typer.Option("--smoke", help="A seconds-long version with tiny sizes (the tests run it)."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: reproductions/NAME).")
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds per model, instead of the reproduction's own.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(help="Models run at once, one process each (default: one per CPU core)."),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    fail_fast: FailFastOption = False,
    compare_dir: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="predictor only: read this finished `variability compare` folder instead of "
            "running a comparison.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Reproduce a published result: prints a table, writes a report and results.json.

    Exit codes: 0 done; 2 an unknown name or a bad option; 130 interrupted.
    """
    reproduction = REPRODUCTIONS.get(name)
    if reproduction is None:
        raise UserError(f"unknown reproduction {name!r}; known: {', '.join(REPRODUCTIONS)}")
    if compare_dir is not None and name != "predictor":
        raise UserError("--compare applies to the predictor reproduction only")
    folder = out or Path("reproductions") / name
    _check_writable(folder)
    started = time.perf_counter()
    try:
        with chosen_executor(executor, ray_address, fail_fast, quiet) as engine:
            options = Options(
                smoke=smoke,
                seeds=seeds,
                device=engine.device(device),
                workers=workers,
                compare=compare_dir,
                folder=folder,
                executor=engine,
            )
            total = reproduction.units(options)
            if not quiet and engine.name != "local":
                stderr().print(
                    f"{total} models on {engine.describe(options.device, total, workers)}",
                    highlight=False,
                )
            with progress_bar(total, name, quiet=quiet, unit="models") as advance:
                outcome = reproduction.run(options, advance)
    except JobsFailed as failed:
        raise report_failures(
            failed, f"no report was written; the training runs that finished are kept in {folder}"
        ) from None
    except KeyboardInterrupt:
        stderr().print(
            f"interrupted; no report was written. Training runs that finished are kept in "
            f"{folder}: a rerun with the same options reuses them.",
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    outcome.seconds = time.perf_counter() - started
    index = write_outcome(outcome, folder)
    print_outcome(outcome)
    stdout().print(f"report: {index}  results: {folder / 'results.json'}", highlight=False)


def _check_writable(folder: Path) -> None:
    """Refuse an output folder we cannot write before any work starts."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"{existing} is a file, not a folder; choose another --out")
    if not os.access(existing, os.W_OK):
        raise UserError(f"cannot write to {existing}: permission denied; choose another --out")


def frame_table(frame: pd.DataFrame, title: str = "") -> Table:
    """A DataFrame as a rich table: text left, numbers right."""
    table = Table(title=title or None, box=box.SIMPLE_HEAD, title_justify="left")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def print_outcome(outcome: Outcome) -> None:
    console = stdout()
    if not console.is_terminal:
        console.width = max(console.width, WIDE)  # a log or a pipe: no wrapping inside cells
    size = " (smoke size)" if outcome.smoke else ""
    console.print(f"[bold]{outcome.title}{size}[/]: {outcome.paper}", highlight=False)
    console.print(frame_table(outcome.table, outcome.table_caption))
    for frame, caption in outcome.printed_tables:
        console.print(frame_table(frame, caption))
    console.print(frame_table(outcome.claims, "Published claims beside ours"))
    for sentence in outcome.findings:
        console.print(f"- {sentence}", highlight=False)
    if outcome.seconds is not None:
        console.print(f"run time {outcome.seconds:.1f} s", highlight=False)
