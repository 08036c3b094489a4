"""``variability train``: build a model at a parameter budget and train it with a Monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from variability.arch import INITS, build_model, count_params
from variability.cli.choices import FAMILY_CHOICES, OPTIMIZER_CHOICES, TASK_HELP, one_of
from variability.cli.console import progress_bar, reports_user_errors, stderr, stdout
from variability.devices import resolve_device
from variability.errors import UserError
from variability.reports.provenance import command_line
from variability.reports.text import baseline_name
from variability.runs.events import Event
from variability.runs.protocol import PROTOCOLS, protocol_named
from variability.runs.trainer import OPTIMIZERS, TrainResult
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
    han_layout: Annotated[
        str,
        typer.Option(
            help="Which hidden layers of a Han network are dense: default (the first only) or "
            "published (1, 2 and the last, as Yu & Zhang's HanNet).",
            metavar="<default|published>",
        ),
    ] = "default",
    init: Annotated[
        str | None,
        typer.Option(
            help="Weight initialisation (default: the family's own; torch-* as PyTorch's own "
            "functions, biases included).",
            metavar=one_of(INITS),
            show_default=False,
        ),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="Training protocol: default (Adam, batches of 128) or paper (Yu & Zhang's: "
            "SGD momentum 0.9, batches of 100 drawn per step, 40,000 steps, rate x0.2 after "
            "50/70/90%, two output columns on the checkerboard). Options given explicitly win.",
            metavar=one_of(list(PROTOCOLS)),
        ),
    ] = "default",
    val_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of the training part held out for validation (default 0.2); 0 keeps "
            "none, as the papers did: the last checkpoint is then kept.",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Training steps (default 2000; paper: 40,000).", show_default=False),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate (default 0.003; paper: 0.05).", show_default=False),
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(
            help="The optimizer (sgd: SGD with momentum 0.9; default adam; paper: sgd).",
            metavar=OPTIMIZER_CHOICES,
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Rows per training batch (default 128; paper: 100).", show_default=False),
    ] = None,
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
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if han_layout != "default" and family != "han":
        raise UserError("--han-layout chooses the dense layers of a Han network: add --family han")
    if width is not None:
        params = None
    chosen = protocol_named(protocol)
    task_options = chosen.options_for(task)
    if val_fraction is not None:
        task_options["val_fraction"] = val_fraction
    the_task = load_task(task, task_seed, **task_options)
    model = build_model(
        family,
        the_task.d_in,
        the_task.d_out,
        depth,
        width=width,
        params=params,
        seed=seed,
        init=init,
        layout=han_layout if family == "han" else None,
    )
    target = resolve_device(device)
    out = out or default_out(family, task, depth, params, width, seed)
    config = chosen.train_config(
        steps=steps,
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        seed=seed,
        every=every,
        eval_every=eval_every,
    )
    steps = config.steps
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
        f"{result.chosen}; output V {variability:.3g} on the probe set, {collapsed}"
        if variability is not None
        else result.chosen,
        highlight=False,
    )
    console.print(
        f"{spec['family']} depth {spec['depth']} width {spec['width']} ({parameters:,} "
        f"parameters): "
        f"{result.run_dir / 'model.pt'}  (draw it: variability report {result.run_dir})",
        highlight=False,
        soft_wrap=True,
    )
