"""``variability train``: build a model at a parameter budget and train it with a Monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from variability.arch import build_model, count_params
from variability.cli.choices import FAMILY_CHOICES, OPTIMIZER_CHOICES, TASK_HELP
from variability.cli.console import progress_bar, reports_user_errors, stderr, stdout
from variability.devices import resolve_device
from variability.reports.provenance import command_line
from variability.reports.text import baseline_name
from variability.runs.events import Event
from variability.runs.trainer import TrainConfig, TrainResult
from variability.runs.trainer import train as run_training
from variability.tasks import load_task

__all__ = ["train"]

EXIT_INTERRUPTED = 130


def default_out(
    family: str, task: str, depth: int, params: int | None, width: int | None, seed: int
) -> Path:
    size = f"w{width}" if width is not None else f"p{params}"
    return Path("runs") / f"{family}-{task}-d{depth}-{size}-s{seed}"


@reports_user_errors
def train(
    family: Annotated[
        str, typer.Option(help="Architecture family.", metavar=FAMILY_CHOICES)
    ] = "han",
    task: Annotated[str, typer.Option(help=TASK_HELP, metavar="NAME")] = "checkerboard",
    params: Annotated[
        int | None,
        typer.Option(help="Parameter budget; the width is the one whose count is nearest."),
    ] = 3000,
    width: Annotated[
        int | None,
        typer.Option(help="Hidden width, instead of a parameter budget.", show_default=False),
    ] = None,
    depth: Annotated[int, typer.Option(help="Hidden layers.")] = 20,
    steps: Annotated[int, typer.Option(help="Training steps (optimizer updates).")] = 2000,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 3e-3,
    optimizer: Annotated[
        str, typer.Option(help="The optimizer (SGD with momentum 0.9).", metavar=OPTIMIZER_CHOICES)
    ] = "adam",
    batch_size: Annotated[int, typer.Option(help="Rows per training batch.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the model's weights and the batch order.")] = 0,
    task_seed: Annotated[int, typer.Option(help="Seed of the task's train/val/test split.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    out: Annotated[
        Path | None,
        typer.Option(help="Run directory (default: runs/FAMILY-TASK-dDEPTH-pPARAMS-sSEED)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out from its last checkpoint; a finished "
            "run is not trained again.",
        ),
    ] = False,
    every: Annotated[int, typer.Option(help="Record the probe's figures every N steps.")] = 50,
    eval_every: Annotated[
        int | None,
        typer.Option(help="Evaluate on the validation split (and checkpoint) every N steps."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bar and no warning lines.")
    ] = False,
) -> None:
    """Train a model at a parameter budget, watching every probe site; writes a run directory.

    Exit codes: 0 done; 2 bad input, refused budget or unusable run directory; 130 interrupted.
    """
    if width is not None:
        params = None
    the_task = load_task(task, task_seed)
    model = build_model(
        family, the_task.d_in, the_task.d_out, depth, width=width, params=params, seed=seed
    )
    target = resolve_device(device)
    out = out or default_out(family, task, depth, params, width, seed)
    config = TrainConfig(
        steps=steps,
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        seed=seed,
        every=every,
        eval_every=eval_every,
    )
    errors = stderr()

    def show(event: Event) -> None:
        errors.print(f"[yellow]warning:[/] {event.message}", markup=True, highlight=False)

    last = {"step": 0}
    with progress_bar(steps, "training", quiet=quiet, unit="steps") as advance:

        def progress(step: int, info: dict[str, Any]) -> None:
            advance(step - last["step"], **_fields(info))
            last["step"] = step

        try:
            result = run_training(
                model,
                the_task,
                config,
                out,
                resume=resume,
                device=target,
                on_progress=progress,
                on_event=None if quiet else show,
                quiet=True,
                extra_info={"command": command_line()},
            )
        except KeyboardInterrupt:
            errors.print(
                f"interrupted at step {last['step']}; `variability train ... --out {out} "
                "--resume` continues from the last checkpoint",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
    print_result(result, model.spec, count_params(model), the_task.baseline("test"))


def _fields(info: dict[str, Any]) -> dict[str, str]:
    fields = {}
    if info.get("loss") is not None:
        fields["loss"] = f"{info['loss']:.4g}"
    if info.get("output_variability") is not None:
        fields["output V"] = f"{info['output_variability']:.3g}"
    if info.get("val") is not None:
        fields["val"] = f"{info['val']:.4f}"
    return fields


def print_result(
    result: TrainResult, spec: dict[str, Any], parameters: int, baseline: float
) -> None:
    """The chosen checkpoint's scores beside the baseline's, its collapse, and where it is."""
    console = stdout()
    if result.already_finished:
        console.print(f"{result.run_dir} holds a finished run; nothing was trained again.")
    console.print(
        f"{result.metric}: train {result.train:.4f}  val {result.val:.4f}  test {result.test:.4f}"
        f"  (baseline, the {baseline_name(result.metric)}: test {baseline:.4f})",
        highlight=False,
    )
    collapsed = "collapsed (C2C)" if result.network_collapsed else "not collapsed"
    variability = result.output_variability
    console.print(
        f"checkpoint of step {result.best_step} of {result.steps}, chosen on validation; "
        f"output V {variability:.3g} on the probe set, {collapsed}"
        if variability is not None
        else f"checkpoint of step {result.best_step} of {result.steps}, chosen on validation",
        highlight=False,
    )
    console.print(
        f"{spec['family']} depth {spec['depth']} width {spec['width']} ({parameters:,} "
        f"parameters): "
        f"{result.run_dir / 'model.pt'}  (draw it: variability report {result.run_dir})",
        highlight=False,
        soft_wrap=True,
    )
