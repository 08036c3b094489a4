"""``variability compare``: FC, LCW and Han at one parameter budget over depths and seeds.

Run with no arguments it is the project's quick default comparison on the checkerboard;
docs/compare.md describes every option, the folder it writes, the report, and how long the quick
comparison takes on which machine.
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
from variability.cli.choices import FAMILY_LIST, OPTIMIZER_CHOICES, TASK_HELP, one_of
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
    INITS,
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
from variability.runs.protocol import PROTOCOLS, Protocol, protocol_named

__all__ = ["compare"]

EXIT_INTERRUPTED = 130
SHORT_HEADERS = {
    "parameters": "params",
    "output V at init": "V init",
    "C2C at init": "C2C init",
    "C2C after training": "C2C after",
}


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
    "steps": QUICK.steps,
    "lr": QUICK.lr,
    "optimizer": QUICK.optimizer,
    "batch_size": QUICK.batch_size,
}
"""The training a comparison gets when neither its protocol nor an option says otherwise."""


def protocol_training(protocol: Protocol) -> dict[str, Any]:
    """The comparison's training settings a protocol fixes (steps, rate, optimizer, batch)."""
    return {key: protocol.config[key] for key in DEFAULT_TRAINING if key in protocol.config}


@reports_user_errors
def compare(
    task: Annotated[str, typer.Option(help=TASK_HELP, metavar="NAME")] = QUICK.task,
    params: Annotated[
        int,
        typer.Option(
            help="Parameter budget: each model takes the width whose count is nearest to it."
        ),
    ] = QUICK.params,
    depths: Annotated[
        str, typer.Option(help="Hidden-layer counts, separated by commas.", metavar="N,N,...")
    ] = _show(QUICK.depths),
    families: Annotated[
        str,
        typer.Option(
            help="Families to compare, separated by commas.",
            metavar=FAMILY_LIST,
        ),
    ] = _show(QUICK.families),
    seeds: Annotated[int, typer.Option(help="Models per family and depth (seeds 0..N-1).")] = (
        QUICK.seeds
    ),
    inits: Annotated[
        str,
        typer.Option(
            help="Initialisations to compare, separated by commas: default (the family's own) "
            "or a remedy method of variability init (lsuv, autoinit, center), applied on the "
            "training inputs to the same built models, seed by seed.",
            metavar=one_of(list(INITS)) + ",...",
        ),
    ] = _show(QUICK.inits),
    protocol: Annotated[
        str,
        typer.Option(
            help="Training protocol: default, or paper (Yu & Zhang's: SGD momentum 0.9, batches "
            "of 100 drawn per step, 40,000 steps, rate 0.05 x0.2 after 50/70/90%, two output "
            "columns on the checkerboard). Options given explicitly win.",
            metavar=one_of(list(PROTOCOLS)),
        ),
    ] = "default",
    han_layout: Annotated[
        str,
        typer.Option(
            help="Dense hidden layers of the Han networks: default (the first only) or "
            "published (1, 2 and the last, as Yu & Zhang's HanNet).",
            metavar="<default|published>",
        ),
    ] = "default",
    steps: Annotated[
        int | None,
        typer.Option(
            help=f"Training steps per model (default {QUICK.steps}; paper: 40,000).",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help=f"Learning rate (default {QUICK.lr:g}; paper: 0.05).", show_default=False
        ),
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(
            help=f"The optimizer (sgd: SGD with momentum 0.9; default {QUICK.optimizer}; paper: "
            "sgd).",
            metavar=OPTIMIZER_CHOICES,
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Rows per training batch (default {QUICK.batch_size}; paper: 100).",
            show_default=False,
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            help="How far from the budget a model's parameter count may fall, above or below, "
            f"before the budget is refused: {DEFAULT_TOLERANCE:.0%} keeps the families' counts "
            "equal, for every comparison."
        ),
    ] = DEFAULT_TOLERANCE,
    every: Annotated[
        int | None,
        typer.Option(
            help="Record the probe's figures every N steps (default: a tenth of --steps).",
            show_default=False,
        ),
    ] = None,
    task_seed: Annotated[int, typer.Option(help="Seed of the task's train/val/test split.")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA if there is a GPU), cpu, cuda:N.")] = (
        "auto"
    ),
    workers: Annotated[
        int | None,
        typer.Option(
            help="Models trained at once, each in its own process (default: one per CPU core, "
            "up to 8; one on a GPU).",
            show_default=False,
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
        bool, typer.Option("--quiet", help="No progress and no messages on stderr.")
    ] = False,
) -> None:
    """Compare FC, LCW and Han networks at one parameter budget over depths and seeds.

    Every model is built at the budget, probed at initialisation (variability, activation ratio,
    collapse to constants), trained, chosen on the validation split and scored on the test
    split. Results go to OUT/results.jsonl as each model finishes (a rerun with the same
    options resumes), and the report to OUT/report/index.html. With no options: the quick
    comparison (docs/compare.md).
    """
    training = {**DEFAULT_TRAINING, **protocol_training(protocol_named(protocol))}
    given = {"steps": steps, "lr": lr, "optimizer": optimizer, "batch_size": batch_size}
    training.update({key: value for key, value in given.items() if value is not None})
    settings = CompareSettings(
        task=task,
        params=params,
        depths=parse_list("depths", depths, int),
        families=parse_list("families", families),
        seeds=seeds,
        tolerance=tolerance,
        every=every,
        task_seed=task_seed,
        protocol=protocol,
        han_layout=han_layout,
        inits=parse_list("inits", inits),
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
        progress_bar(len(cells), "models", quiet=quiet, log_every=0) as advance,
    ):
        running: dict[str, int] = {}

        def on_plan(planned: list[Cell], before: int) -> None:
            finished["before"] = before
            if not quiet:
                _announce(settings, planned, before, out, engine.device(device), engine, workers)

        def on_cell(cell: Cell, record: dict[str, Any], skipped: bool) -> None:
            finished["count"] += 1
            running.pop(cell.name, None)
            done = (
                "finished earlier" if skipped else f"{_score(record)} in {record['seconds']:.0f} s"
            )
            advance(1, **{cell.name: done}, **_status(running, settings.steps))

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
    inits = f", inits {_show(settings.inits)}" if settings.varies_init else ""
    line = (
        f"{len(cells)} models ({families} at depths {_show(settings.depths)}{inits}, "
        f"{settings.seeds} seeds) at {settings.params:,} parameters on {settings.task}; "
        + executor.describe(target, max(1, len(cells) - before), workers)
    )
    if settings.tolerance != DEFAULT_TOLERANCE:
        line += (
            f"; parameter counts may fall up to {settings.tolerance:.0%} from the budget "
            "(every exact count is in the table)"
        )
    if before:
        line += f"; {before} already finished in {out}, resuming"
    stderr().print(line, highlight=False)


def _score(record: dict[str, Any]) -> str:
    """A finished model's test score: ``test accuracy 0.861``."""
    test = record.get("test")
    return f"test {record.get('metric', 'metric')} " + ("-" if test is None else f"{test:.3f}")


def _status(running: dict[str, int], steps: int) -> dict[str, str]:
    if not running:
        return {}
    shown = "  ".join(f"{name} {step}/{steps}" for name, step in sorted(running.items()))
    return {"training": shown}


def print_summary(comparison: Comparison, index: Path) -> None:
    """The summary table with its legend, and the results in sentences, on stdout."""
    console = stdout()
    frame = cells_frame(comparison.records)
    metric = metric_name(comparison.records)
    baseline = comparison.baseline
    table = Table(
        title=f"test: {metric} of the model chosen on validation, mean ± sd over seeds",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    summary = summary_table(frame, metric, baseline).rename(
        columns={**SHORT_HEADERS, f"test {metric}": "test"}
    )
    for column in summary.columns:
        table.add_column(column, justify="left" if column == "family" else "right", no_wrap=True)
    for row in summary.itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    console.print(legend(metric), style="dim", highlight=False)
    for line in story(frame, metric, baseline):
        console.print(line, highlight=False)
    console.print(f"report: {index}", highlight=False, soft_wrap=True)


def legend(metric: str) -> str:
    """What the summary table's short column names mean."""
    constant = "the majority class" if metric == "accuracy" else "the training mean"
    return (
        "params: exact parameter count; V init: the output's variability at initialisation "
        "(mean over seeds); C2C init / after: seeds whose output is collapsed to a constant at "
        f"initialisation / after training; test: test {metric}; baseline: {constant}, the "
        "score of a model collapsed to a constant."
    )
