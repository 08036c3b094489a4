"""``variability compare``: FC, LCW and Han at one parameter budget over depths and seeds.

Run with no arguments it is the project's quick default comparison on the checkerboard (a minute
and a half to two and a half on 2 busy CPU cores); docs/compare.md describes every option, the
folder it writes and the report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich import box
from rich.table import Table

from variability.arch import DEFAULT_TOLERANCE
from variability.cli.console import progress_bar, reports_user_errors, stderr, stdout
from variability.cli.executor_options import (
    ExecutorOption,
    FailFastOption,
    RayAddressOption,
    chosen_executor,
    report_failures,
)
from variability.errors import UserError
from variability.experiments.comparison import (
    QUICK,
    REPORT,
    RESULTS,
    Cell,
    CompareSettings,
    Comparison,
    plan_cells,
)
from variability.experiments.comparison import compare as run_comparison
from variability.experiments.comparison.report_data import metric_name, write_report
from variability.experiments.jobs import Executor, JobsFailed
from variability.reports.comparison_report import cells_frame, story, summary_table
from variability.reports.style import family_label
from variability.runs.protocol import Protocol, protocol_named
from variability.tasks import task_names

__all__ = ["compare"]

EXIT_INTERRUPTED = 130
SHORT_HEADERS = {
    "parameters": "params",
    "output V at init": "V init",
    "C2C at init": "C2C init",
    "C2C after training": "C2C after",
}
DEFAULT = QUICK


def parse_list(option: str, text: str, kind: type = str) -> tuple[Any, ...]:
    """``"2,8,32"`` as a tuple; a clear error for anything else."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return tuple(kind(p) for p in parts)
    except ValueError:
        raise UserError(
            f"--{option} takes {'integers' if kind is int else 'names'} separated by commas, "
            f"got {text!r}"
        ) from None


def _show(values: tuple[Any, ...]) -> str:
    return ",".join(map(str, values))


DEFAULT_TRAINING: dict[str, Any] = {
    "steps": DEFAULT.steps,
    "lr": DEFAULT.lr,
    "optimizer": DEFAULT.optimizer,
    "batch_size": DEFAULT.batch_size,
}


def protocol_training(protocol: Protocol) -> dict[str, Any]:
    """The comparison's training settings a protocol fixes (steps, rate, optimizer, batch)."""
    return {key: protocol.config[key] for key in DEFAULT_TRAINING if key in protocol.config}


def budget_options(
    params: int | None, depths: str | None, tolerance: float | None
) -> tuple[int, tuple[int, ...], float]:
    """Budget, depths and tolerance from the options given (None: not given).

    Naming neither a budget nor depths asks for the quick comparison, tolerance included; a
    comparison that names either keeps DEFINITIONS.md's 5% rule unless ``--tolerance`` says
    otherwise.
    """
    quick = params is None and depths is None
    if tolerance is None:
        tolerance = QUICK.tolerance if quick else DEFAULT_TOLERANCE
    return (
        QUICK.params if params is None else params,
        QUICK.depths if depths is None else parse_list("depths", depths, int),
        tolerance,
    )


@reports_user_errors
def compare(
    task: Annotated[str, typer.Option(help="Problem: " + ", ".join(task_names()) + ".")] = (
        DEFAULT.task
    ),
    params: Annotated[
        int | None,
        typer.Option(
            help="Parameter budget: each model takes the width whose count is nearest to it.",
            show_default=str(DEFAULT.params),
        ),
    ] = None,
    depths: Annotated[
        str | None,
        typer.Option(
            help="Hidden-layer counts, separated by commas.",
            show_default=_show(DEFAULT.depths),
        ),
    ] = None,
    families: Annotated[
        str, typer.Option(help="Families, separated by commas: fc, lcw, han.")
    ] = _show(DEFAULT.families),
    seeds: Annotated[int, typer.Option(help="Models per family and depth (seeds 0..N-1).")] = (
        DEFAULT.seeds
    ),
    protocol: Annotated[
        str,
        typer.Option(
            help="Training protocol: default, or paper (Yu & Zhang's: SGD momentum 0.9, batches "
            "of 100 drawn per step, 40,000 steps, rate 0.05 x0.2 after 50/70/90%, two output "
            "columns on the checkerboard). Options given explicitly win."
        ),
    ] = "default",
    han_layout: Annotated[
        str,
        typer.Option(
            help="Dense hidden layers of the Han networks: default (the first only) or "
            "published (1, 2 and the last, as Yu & Zhang's HanNet)."
        ),
    ] = "default",
    steps: Annotated[
        int | None,
        typer.Option(help="Training steps per model.", show_default=f"{DEFAULT.steps}"),
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate.", show_default=f"{DEFAULT.lr:g}")
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(help="adam or sgd (momentum 0.9).", show_default=DEFAULT.optimizer),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Rows per training batch.", show_default=f"{DEFAULT.batch_size}"),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            help="How far from the budget a model's count may be before the budget is refused: "
            f"5% (equal parameter counts), or {QUICK.tolerance:.0%} in the quick comparison "
            "(neither --params nor --depths given).",
            show_default=f"{DEFAULT_TOLERANCE:g}, or {QUICK.tolerance:g} in the quick comparison",
        ),
    ] = None,
    every: Annotated[
        int | None,
        typer.Option(help="Record the probe's figures every N steps (default: --steps / 10)."),
    ] = None,
    task_seed: Annotated[int, typer.Option(help="Seed of the task's train/val/test split.")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA if there is a GPU), cpu, cuda:N.")] = (
        "auto"
    ),
    workers: Annotated[
        int | None,
        typer.Option(
            help="Models trained at once, each in its own process (default: one per CPU core, "
            "up to 8; one on a GPU)."
        ),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    fail_fast: FailFastOption = False,
    out: Annotated[
        Path, typer.Option(help="Folder for the results, the models' runs and the report.")
    ] = Path("reports/compare"),
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Delete the comparison already in --out and start over."),
    ] = False,
    self_contained: Annotated[
        bool, typer.Option("--self-contained", help="One index.html with the images embedded.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bar and no messages on stderr.")
    ] = False,
) -> None:
    """Compare FC, LCW and Han networks at one parameter budget over depths and seeds.

    Every model is built at the budget, probed at initialisation (variability, activation ratio,
    collapse to constants), trained, chosen on the validation split and scored on the test
    split. Results go to OUT/results.jsonl as each model finishes (a rerun with the same
    options resumes), and the report to OUT/report/index.html.
    """
    params, depth_list, tolerance = budget_options(params, depths, tolerance)
    training = {**DEFAULT_TRAINING, **protocol_training(protocol_named(protocol))}
    given = {"steps": steps, "lr": lr, "optimizer": optimizer, "batch_size": batch_size}
    training.update({key: value for key, value in given.items() if value is not None})
    settings = CompareSettings(
        task=task,
        params=params,
        depths=depth_list,
        families=parse_list("families", families),
        seeds=seeds,
        tolerance=tolerance,
        every=every,
        task_seed=task_seed,
        protocol=protocol,
        han_layout=han_layout,
        **training,
    )
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    the_task = settings.load_task()
    cells = plan_cells(settings, the_task.d_in, the_task.d_out)
    errors = stderr()
    finished: dict[str, int] = {"count": 0, "before": 0}
    started = time.perf_counter()

    with (
        chosen_executor(executor, ray_address, fail_fast, quiet) as engine,
        progress_bar(len(cells), "models", quiet=quiet, unit="models") as advance,
    ):
        running: dict[str, int] = {}

        def on_plan(planned: list[Cell], before: int) -> None:
            finished["before"] = before
            if not quiet:
                _announce(settings, planned, before, out, engine.device(device), engine, workers)

        def on_cell(cell: Cell, record: dict[str, Any], skipped: bool) -> None:
            finished["count"] += 1
            running.pop(cell.name, None)
            advance(1, **_status(running, settings.steps))

        def on_step(cell: Cell, step: int) -> None:
            running[cell.name] = step
            advance(0, **_status(running, settings.steps))

        try:
            comparison = run_comparison(
                settings,
                out,
                device=device,
                workers=workers,
                fresh=fresh,
                on_plan=on_plan,
                on_cell=on_cell,
                on_step=on_step,
                executor=engine,
            )
        except JobsFailed as failed:
            raise report_failures(
                failed,
                f"the others are in {out / RESULTS} (variability report {out} draws them)",
            ) from None
        except KeyboardInterrupt:
            errors.print(
                f"interrupted: {finished['count']} of {len(cells)} models are finished and kept "
                f"in {out / RESULTS}; run the same command again to resume",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
    seconds = time.perf_counter() - started
    if not quiet and comparison.results_note:
        errors.print(f"note: {comparison.results_note}", highlight=False, markup=False)
    if not quiet:
        trained = finished["count"] - finished["before"]
        errors.print(
            f"{trained} models trained in {seconds:.0f} s; drawing the report", highlight=False
        )
    index = write_report(comparison, out / REPORT, self_contained=self_contained)
    print_summary(comparison, index)


def _announce(
    settings: CompareSettings,
    cells: list[Cell],
    before: int,
    out: Path,
    target: torch.device,
    executor: Executor,
    workers: int | None,
) -> None:
    families = ", ".join(family_label(f) for f in settings.families)
    line = (
        f"{len(cells)} models ({families} at depths {_show(settings.depths)}, "
        f"{settings.seeds} seeds) at {settings.params:,} parameters on {settings.task}; "
        + executor.describe(target, max(1, len(cells) - before), workers)
    )
    if settings.tolerance != DEFAULT_TOLERANCE:
        line += (
            f"; models may be up to {settings.tolerance:.0%} away from the budget "
            "(every exact count is in the report)"
        )
    if before:
        line += f"; {before} already finished in {out}, resuming"
    stderr().print(line, highlight=False)


def _status(running: dict[str, int], steps: int) -> dict[str, str]:
    if not running:
        return {}
    shown = "  ".join(f"{name} {step}/{steps}" for name, step in sorted(running.items()))
    return {"training": shown}


def print_summary(comparison: Comparison, index: Path) -> None:
    """The summary table and the results in sentences, on stdout."""
    console = stdout()
    frame = cells_frame(comparison.records)
    metric = metric_name(comparison.records)
    table = Table(
        title=f"test: {metric} of the model chosen on validation, mean ± sd over seeds",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    summary = summary_table(frame, metric).rename(
        columns={**SHORT_HEADERS, f"test {metric}": "test"}
    )
    for column in summary.columns:
        table.add_column(column, justify="left" if column == "family" else "right", no_wrap=True)
    for row in summary.itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    for line in story(frame, metric):
        console.print(line, highlight=False)
    console.print(f"report: {index}", highlight=False, soft_wrap=True)
