"""``variability report FOLDER``: draw a training run, or a comparison, as HTML with PNG figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from variability.cli.console import reports_user_errors, stderr, stdout
from variability.experiments.comparison import REPORT, SETTINGS, load_comparison
from variability.experiments.comparison.report_data import write_report
from variability.reports.provenance import command_line, provenance
from variability.reports.run_report import write_run_report
from variability.runs.jsonl import read_json_lines
from variability.runs.run_dir import RunDirectory, RunDirError, apply_resume_rule, records_frame

__all__ = ["report"]


@reports_user_errors
def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory (written by `variability train` or a Monitor), or a "
            "comparison folder (written by `variability compare`).",
            metavar="RUN_DIR",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default: RUN_DIR/report).")
    ] = None,
    self_contained: Annotated[
        bool, typer.Option("--self-contained", help="One index.html with the images embedded.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing but errors.")] = False,
) -> None:
    """Draw a training run, or a comparison, as HTML with PNG figures.

    A run: curves, site x step heatmaps of V and activation ratio, gradient RMS per site,
    warnings, and the run's configuration, as index.html with PNG figures. Given the folder of
    a comparison, draw the comparison's report from the models finished so far.
    """
    if (run_dir / SETTINGS).is_file():
        _report_comparison(run_dir, out, self_contained, quiet)
        return
    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"{run.path} is not a run directory (no such folder)")
    info = run.read_run()
    lines = read_json_lines(run.metrics_file)
    records = records_frame(apply_resume_rule(lines.records))
    if records.empty:
        raise RunDirError(f"{run.metrics_file} holds no records yet; nothing to draw")
    if not quiet:
        _note(lines.note())
        stderr().print(f"drawing {len(records):,} records of {run.path}", highlight=False)
    index = write_run_report(
        info,
        records,
        run.read_result(),
        out or run.path / "report",
        self_contained=self_contained,
        title=f"Training run {run.path.resolve().name}",
        provenance=provenance(command=command_line()),
    )
    if not quiet:
        stdout().print(str(index), highlight=False, soft_wrap=True)


def _report_comparison(folder: Path, out: Path | None, self_contained: bool, quiet: bool) -> None:
    comparison = load_comparison(folder)
    if not comparison.records:
        raise RunDirError(f"{folder} is a comparison with no finished model yet; nothing to draw")
    if not quiet:
        _note(comparison.results_note)
        stderr().print(
            f"drawing the comparison in {folder}: {len(comparison.records)} of "
            f"{len(comparison.cells)} models finished",
            highlight=False,
        )
    index = write_report(comparison, out or folder / REPORT, self_contained=self_contained)
    if not quiet:
        stdout().print(str(index), highlight=False, soft_wrap=True)


def _note(text: str | None) -> None:
    if text:
        stderr().print(f"note: {text}", highlight=False, markup=False)
