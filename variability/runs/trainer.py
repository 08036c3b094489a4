"""The trainer behind ``variability train`` and every cell of ``variability compare``.

``train(model, task, config, run_dir)`` trains a built model on a task with a ``Monitor`` and a
fixed probe set, evaluates on the validation split every ``eval_every`` steps, keeps the best of
those checkpoints as ``model.pt`` (chosen on validation, never on test), and scores that model on
every split at the end. It writes the run directory of docs/runs.md as it goes.

Resuming: ``checkpoints/last.pt`` holds the weights, the optimizer's state, the RNG state and
the best-so-far; batches are a function of (seed, step) alone, so a resumed run draws the batches
an uninterrupted one would, and on the CPU ends with the same weights. A finished run (one with
``result.json``) is never trained again.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from variability.arch import count_params, load_model, save_model
from variability.devices import resolve_device
from variability.probes.evaluation import model_device, predict
from variability.runs.checkpoints import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from variability.runs.config import OPTIMIZERS, TrainConfig, TrainConfigError
from variability.runs.events import Event
from variability.runs.loop import make_optimizer, training_steps
from variability.runs.monitor import Monitor
from variability.runs.run_dir import RESULT_FILE, RunDirectory, RunDirError, RunSetup
from variability.tasks import Task
from variability.versions import environment


@dataclass(frozen=True)
class TrainResult:
    """What a finished run reports: the chosen checkpoint's metric on every split, and where.

    ``train``/``val``/``test`` and the ``*_loss`` fields are the task's metric and loss of
    ``model.pt``, the checkpoint with the best validation metric (at ``best_step``); for a task
    without a validation split (``selection`` "final"), the last checkpoint, and ``val`` is NaN.
    ``output_variability`` and ``network_collapsed`` describe that model on the probe set.
    ``already_finished``: the run had finished before this call; nothing was trained.
    """

    run_dir: Path
    metric: str
    train: float
    val: float
    test: float
    train_loss: float
    val_loss: float
    test_loss: float
    best_step: int
    steps: int
    seconds: float
    output_variability: float | None = None
    network_collapsed: bool | None = None
    resumed_from: int | None = None
    already_finished: bool = False
    selection: str = "validation"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], **changes: Any) -> TrainResult:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["run_dir"] = Path(values["run_dir"])
        values.update(changes)
        return cls(**values)

    @property
    def chosen(self) -> str:
        """How ``model.pt`` was chosen, in words."""
        if self.selection == "final":
            return f"the last checkpoint (step {self.steps}): the task has no validation split"
        return f"checkpoint of step {self.best_step} of {self.steps}, chosen on validation"

    def summary(self) -> str:
        return (
            f"{self.metric}: train {self.train:.4f}  val {self.val:.4f}  test {self.test:.4f} "
            f"({self.chosen})"
        )


# --- evaluation --------------------------------------------------------------------------------


def evaluate(
    model: nn.Module, task: Task, x: Tensor, y: Tensor, loss_fn: nn.Module, chunk: int = 8192
) -> tuple[float, float]:
    """(loss, metric) of ``model`` on ``x, y`` in eval mode without gradients (mode restored);
    NaN for an empty split."""
    if len(x) == 0:
        return math.nan, math.nan
    outputs = predict(model, x, batch_size=chunk, device=x.device)
    return float(loss_fn(outputs, y)), task.score(outputs, y)


def _better(value: float, best: float | None) -> bool:
    """Whether a validation metric beats the best so far (higher is better; NaN never wins,
    and anything beats a NaN)."""
    if best is None or math.isnan(best):
        return best is None or not math.isnan(value)
    return not math.isnan(value) and value > best


def probe_set(task: Task, rows: int) -> Tensor:
    """The fixed probe set: a 2-D task's whole input grid, else the first training rows."""
    if task.grid is not None:
        return task.grid.x
    return task.x_train[:rows]


# --- the run -----------------------------------------------------------------------------------


ProgressCallback = Callable[[int, dict[str, Any]], None]


def spec_of(model: nn.Module) -> dict[str, Any]:
    """The spec of a model built by ``build_model`` (saved with it); TypeError for another."""
    spec = getattr(model, "spec", None)
    if not isinstance(spec, dict):
        raise TypeError("train needs a model built by build_model (its spec is saved with it)")
    return spec


def run_info(
    model: nn.Module, task: Task, config: TrainConfig, device: torch.device, **extra: Any
) -> dict[str, Any]:
    """The content of ``run.json`` for a training run (the Monitor adds its own settings)."""
    return {
        "kind": "train",
        "model": {
            "spec": dict(spec_of(model)),
            "parameters": count_params(model),
            "family": spec_of(model).get("family"),
        },
        "task": task.summary(),
        "config": config.to_dict(),
        "environment": environment(device),
        **extra,
    }


def _same_run(existing: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between a stored run and the one asked for (settings that decide results)."""
    differ = []
    for section, keys in (("model", ("spec",)), ("task", ("name", "seed", "options"))):
        for key in keys:
            if existing.get(section, {}).get(key) != wanted[section][key]:
                differ.append(f"{section} {key}")
    old, new = existing.get("config", {}), wanted["config"]
    defaults = TrainConfig().to_dict()  # settings added since a run was made had their default
    differ += [f"{k}" for k in new if old.get(k, defaults.get(k)) != new[k]]
    return differ


def _estimate_bytes(model: nn.Module, config: TrainConfig, sites: int) -> int:
    weights = 4 * count_params(model)
    checkpoints = 2 * (4 * weights)  # weights + two Adam moments + model.pt, and a temporary copy
    records = (config.steps // config.every + 2) * (2 * (sites + 1) + 2) * 400
    return checkpoints + records


def train(
    model: nn.Module,
    task: Task,
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike[str] = "runs/run",
    *,
    resume: bool = False,
    device: torch.device | str | None = None,
    on_progress: ProgressCallback | None = None,
    on_event: Callable[[Event], None] | None = None,
    quiet: bool = True,
    warn: bool = False,
    extra_info: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` (built by ``build_model``) on ``task``, writing the run to ``run_dir``.

    ``resume``: continue the run in ``run_dir`` from its last checkpoint (or start it if there is
    none); a finished run returns its stored result at once. Without ``resume``, a directory that
    already holds a run is refused. ``on_progress(step, info)`` is called after every step, with
    ``info`` holding the latest ``loss`` (mean since the previous record), ``output_variability``
    (the probe set's) and ``val`` (the last validation metric). ``on_event`` receives the
    monitor's warnings (default: printed on stderr unless ``quiet``); ``warn`` also raises them as
    Python warnings. ``extra_info`` is stored in run.json (the command line, for instance).
    """
    config = config or TrainConfig()
    depth = int(spec_of(model).get("depth", 1))
    if device is None:
        device = model_device(model)
    device = resolve_device(device)
    model.to(device)
    run = RunDirectory(run_dir)
    wanted = run_info(model, task, config, device, **(extra_info or {}))

    checkpoint = None
    resume_step: int | None = None
    if run.is_run():
        if not resume:
            raise RunDirError(
                f"{run.path} already holds a run; pass --resume (resume=True) to continue it, "
                "or choose another output directory"
            )
        existing = run.read_run()
        differ = _same_run(existing, wanted)
        if differ:
            raise RunDirError(
                f"{run.path} holds a run made with other settings ({', '.join(differ)}); "
                "resume it with the same settings, or choose another output directory"
            )
        stored = run.read_result()
        if stored is not None:
            # where it is now: a run written elsewhere (a Ray worker's scratch copy) and moved
            return TrainResult.from_dict(stored, already_finished=True, run_dir=run.path)
        if run.last_checkpoint.exists():
            checkpoint = load_checkpoint(run.last_checkpoint, device)
            resume_step = int(checkpoint["step"])
        elif run.has_records():
            resume_step = -1  # killed before its first checkpoint: start over, keep the lines
    elif run.has_records():
        raise RunDirError(
            f"{run.path} holds records but no run.json; choose another output directory"
        )

    loss_fn = task.loss_fn()
    inputs = probe_set(task, config.probe_rows)
    started = time.perf_counter()
    before = float(checkpoint.get("seconds", 0.0)) if checkpoint is not None else 0.0

    def elapsed() -> float:
        """Seconds of the whole run: earlier segments up to their last checkpoint, and this."""
        return before + time.perf_counter() - started

    setup = RunSetup(
        run.path,
        resume_step=resume_step,
        info=wanted,
        required_bytes=_estimate_bytes(model, config, depth),
    )
    monitor = Monitor(
        model,
        setup,
        every=config.every,
        probe_inputs=inputs,
        redundancy=config.redundancy,
        dead_warning=config.dead_warning,
        on_event=on_event,
        quiet=quiet,
        warn=warn,
    )
    try:
        scores = _train_loop(
            model,
            task,
            config,
            run,
            monitor,
            loss_fn,
            device,
            checkpoint,
            on_progress,
            inputs,
            elapsed,
        )
    finally:
        monitor.close()
    result = TrainResult.from_dict(
        scores | {"run_dir": str(run.path), "seconds": round(elapsed(), 3)},
        resumed_from=resume_step,
    )
    run.write_json(RESULT_FILE, result.to_dict())
    return result


def _train_loop(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    run: RunDirectory,
    monitor: Monitor,
    loss_fn: nn.Module,
    device: torch.device,
    checkpoint: dict[str, Any] | None,
    on_progress: ProgressCallback | None,
    inputs: Tensor,
    elapsed: Callable[[], float],
) -> dict[str, Any]:
    x_train, y_train = task.x_train.to(device), task.y_train.to(device)
    x_val, y_val = task.x_val.to(device), task.y_val.to(device)
    optimizer = make_optimizer(model, config)
    best: dict[str, Any] = {"step": None, "val": None, "val_loss": None}
    start = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        set_rng_state(checkpoint["rng"])
        best = dict(checkpoint["best"])
        monitor.load_state_dict(checkpoint["monitor"])
        start = int(checkpoint["step"])

    def validate(step: int) -> float | None:
        if not task.has_validation:  # nothing to choose on: model.pt is the latest checkpoint
            best.update(step=step)
            save_model(model, run.model_file)
            return None
        val_loss, val_metric = evaluate(model, task, x_val, y_val, loss_fn)
        improved = _better(val_metric, best["val"])
        if improved:
            best.update(step=step, val=val_metric, val_loss=val_loss)
            save_model(model, run.model_file)
        monitor.record(
            "eval", step=step, split="val", loss=val_loss, metric=val_metric, best=improved
        )
        return val_metric

    def save(step: int) -> None:
        monitor.sync()  # the records up to this step are on disk before the checkpoint is
        save_checkpoint(
            run.last_checkpoint,
            {
                "format": CHECKPOINT_FORMAT,
                "format_version": 1,
                "step": step,
                "seconds": elapsed(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng_state(),
                "best": best,
                "monitor": monitor.state_dict(),
            },
        )

    model.train()
    info: dict[str, Any] = {"loss": None, "output_variability": None, "val": best["val"]}
    if checkpoint is None:
        info["val"] = validate(0)
        save(0)
    steps, every = config.steps, config.every
    eval_every, checkpoint_every = config.eval_interval, config.checkpoint_interval

    def monitored(step: int) -> contextlib.AbstractContextManager:
        return monitor.step(step, record=step % every == 0 or step == 1 or step == steps)

    for step, loss in training_steps(
        model, x_train, y_train, config, loss_fn, optimizer, start=start, context=monitored
    ):
        monitor.log(loss=loss)
        if step % eval_every == 0 or step == steps:
            info["val"] = validate(step)
        if step % checkpoint_every == 0 or step == steps:
            save(step)
        if on_progress is not None:
            info["loss"] = monitor.latest.get("loss")
            info["output_variability"] = monitor.latest.get("output_variability")
            on_progress(step, info)
    return _final(model, task, run, loss_fn, device, best, steps, inputs, monitor)


def _final(
    model: nn.Module,
    task: Task,
    run: RunDirectory,
    loss_fn: nn.Module,
    device: torch.device,
    best: dict[str, Any],
    steps: int,
    inputs: Tensor,
    monitor: Monitor,
) -> dict[str, Any]:
    """Score the chosen checkpoint (model.pt, as a reader would load it) on every split."""
    from variability.probes import probe_model

    chosen = load_model(run.model_file, device=device)
    scores: dict[str, Any] = {"metric": task.metric}
    for split in ("train", "val", "test"):
        x, y = task.split(split)
        loss, metric = evaluate(chosen, task, x.to(device), y.to(device), loss_fn)
        scores[split], scores[f"{split}_loss"] = metric, loss
    results = probe_model(chosen, inputs, batch_size=4096, redundancy=False)
    scores.update(
        best_step=int(best["step"]),
        steps=steps,
        selection="validation" if task.has_validation else "final",
        output_variability=None if results.output is None else results.output.variability,
        network_collapsed=results.network_collapsed,
    )
    monitor.record("finish", step=steps, **scores)
    return scores


def read_result(run_dir: str | os.PathLike[str]) -> TrainResult | None:
    """The stored result of a finished run, or None while it has not finished."""
    stored = RunDirectory(run_dir).read_result()
    return None if stored is None else TrainResult.from_dict(stored)


__all__ = [
    "OPTIMIZERS",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "evaluate",
    "probe_set",
    "read_result",
    "run_info",
    "train",
]
