"""``Monitor``: the probe's figures every N steps of any training loop, written to a run directory.

    monitor = Monitor(model, "runs/exp1", every=50, probe_inputs=grid)
    for step, (x, y) in enumerate(batches):
        with monitor.step(step):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        monitor.log(loss=loss, lr=lr)
    monitor.close()

Why it is built this way:

- On steps it does not record, ``step()`` attaches nothing: the training step runs exactly as
  without the monitor. On recorded steps the probe's hooks reduce the training batch at every
  site (and the gradient of the loss at each site's output during ``backward``), then the fixed
  probe set, if given, runs in eval mode without gradients. The figures are written at once and
  the statistics dropped: no tensor is kept from one step to the next.
- Hooks are removed, and the model's train/eval mode restored, on every exit path, an exception
  in the user's step included (nothing is recorded for a step that raised).
- Under ``torch.distributed`` every rank gathers, one ``all_reduce`` merges the sums exactly
  (``ProbeState.all_reduced``), and only rank 0 writes. The probe set is split between ranks.
- Warnings (a site becoming collapsing or collapsed, too many dead units, NaN/Inf) are events:
  written once to the run and shown once: raised as a ``MonitorWarning`` (which Python prints),
  or, with ``warn=False``, printed as one line on stderr; ``on_event`` replaces the line.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from variability.errors import UserError
from variability.probes import Probe, ProbeResults, SiteResult
from variability.probes.evaluation import evaluating, model_device
from variability.probes.sites import SiteSelector
from variability.runs.events import BATCH, PROBE_SET, Event, EventLog, MonitorWarning
from variability.runs.run_dir import (
    FORMAT,
    FORMAT_VERSION,
    RUN_FILE,
    RunDirectory,
    RunDirError,
    RunSetup,
)
from variability.runs.step_records import LatestStepRecords, lost_records
from variability.versions import environment

SITE_FIELDS = (
    "depth",
    "kind",
    "units",
    "samples",
    "variability",
    "status",
    "activation_ratio",
    "dead_fraction",
    "linear_fraction",
    "constant_fraction",
    "activation_shift",
    "nonfinite",
    "rms",
)


class RecordWriter(Protocol):
    """Somewhere else records go (TensorBoard...): ``write`` gets each batch of records."""

    def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class MonitoredStep:
    """What ``Monitor.step`` returns: a context manager, or ``begin()`` / ``end()`` by hand."""

    __slots__ = ("monitor", "recording", "step")

    def __init__(self, monitor: Monitor, step: int, recording: bool) -> None:
        self.monitor = monitor
        self.step = step
        self.recording = recording

    def begin(self) -> MonitoredStep:
        self.monitor._begin(self)
        return self

    def end(self, failed: bool = False) -> None:
        self.monitor._end(self, failed)

    def __enter__(self) -> MonitoredStep:
        return self.begin()

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.end(failed=kind is not None)


class Monitor:
    """Record the probe's figures, per-site gradient RMS and logged values every ``every`` steps.

    ``run_dir``: the run directory (created; checked writable with room to spare), or a
    ``RunSetup`` that says how to open it: to continue a run after its last checkpoint, or to
    add entries to ``run.json``. ``sites``: as for ``Probe``. ``probe_inputs``: a fixed probe
    set run on every recorded step (eval mode, no gradients), so figures stay comparable from
    step to step; with ``probe_targets`` and ``loss_fn(outputs, targets)`` its loss is recorded
    too. ``gradients``: record the RMS gradient of the loss at every site (needs ``backward``
    inside the step block). ``dead_warning``: the dead-unit fraction from which a site raises
    an event. Each event is raised as a ``MonitorWarning`` (``warn``, the default), which Python
    prints once; with ``warn=False`` it is printed as one line on stderr instead (unless
    ``quiet``); ``on_event``, if given, is called with it in place of that line. Other keyword
    arguments go to ``Probe`` (``thresholds=Thresholds(...)``, ``unit_axis``...).

    Two defaults differ from ``Probe``'s, on purpose: ``gradients`` is on (the training step runs
    ``backward`` anyway, and the gradient RMS is what tells collapse to constants from vanishing
    gradients), and ``redundancy`` is off (its cross products cost a matrix product per site at
    every recorded step; a probe pays it once).
    """

    def __init__(
        self,
        model: nn.Module,
        run_dir: str | os.PathLike[str] | RunSetup,
        every: int = 50,
        sites: SiteSelector = "auto",
        probe_inputs: Tensor | None = None,
        loss_fn: Callable[[Any, Tensor], Tensor] | None = None,
        *,
        probe_targets: Tensor | None = None,
        probe_batch_size: int | None = None,
        gradients: bool = True,
        redundancy: bool = False,
        dead_warning: float = 0.5,
        on_event: Callable[[Event], None] | None = None,
        quiet: bool = False,
        warn: bool = True,
        writers: Iterable[RecordWriter] = (),
        tensorboard: bool | str | os.PathLike[str] = False,
        **probe_options: Any,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UserError(f"every must be an integer >= 1, got {every!r}")
        if not 0.0 <= dead_warning <= 1.0:
            raise UserError(f"dead_warning must lie in [0, 1], got {dead_warning!r}")
        if probe_targets is not None:
            if probe_inputs is None:
                raise UserError("probe_targets needs probe_inputs")
            if len(probe_targets) != len(probe_inputs):
                raise UserError(
                    f"{len(probe_inputs)} probe inputs but {len(probe_targets)} probe targets"
                )
        self.model = model
        self.every = every
        self.loss_fn = loss_fn
        self.gradients = gradients
        self.dead_warning = float(dead_warning)
        self.probe_batch_size = probe_batch_size
        self._on_event = on_event
        self._quiet = quiet
        self._warn = warn
        self.rank, self.world = _rank_and_world()
        self._batch_probe = Probe(
            model, sites, gradients=gradients, redundancy=redundancy, **probe_options
        )
        self.thresholds = self._batch_probe.thresholds
        self._set_probe: Probe | None = None
        self._probe_inputs: Tensor | None = None
        self._probe_targets: Tensor | None = None
        self._probe_rows = 0 if probe_inputs is None else len(probe_inputs)
        if probe_inputs is not None:
            self._set_probe = Probe(
                model, sites, gradients=False, redundancy=redundancy, **probe_options
            )
            # Each rank runs its share of the probe set; the all_reduce adds the shares up.
            self._probe_inputs = probe_inputs[self.rank :: self.world]
            if probe_targets is not None:
                self._probe_targets = probe_targets[self.rank :: self.world]
        self.watched = PROBE_SET if probe_inputs is not None else BATCH
        self.events: list[Event] = []
        self._warnings = EventLog(self.thresholds, self.dead_warning)
        self._sums: dict[str, Any] = {}
        self._counts: dict[str, int] = {}
        self._pending: dict[str, Any] | None = None
        self._interval = 0
        self._last_step: int | None = None
        self._closed = False
        self._latest = LatestStepRecords()
        self._started = True
        self.latest: dict[str, Any] = {}
        setup = run_dir if isinstance(run_dir, RunSetup) else RunSetup(run_dir)
        self.run = RunDirectory(setup.path)
        self.segment = 0
        self._writers: list[RecordWriter] = []
        if self.rank == 0:
            self._open_run(setup)
            self._writers = list(writers)
            if tensorboard:
                from variability.runs.tensorboard import TensorBoardWriter

                folder = self.run.path / "tensorboard" if tensorboard is True else tensorboard
                self._writers.append(TensorBoardWriter(folder))

    # --- the run directory ---------------------------------------------------------------------

    def _open_run(self, setup: RunSetup) -> None:
        run = self.run
        run.prepare(setup.required_bytes)
        resume_step = setup.resume_step
        if run.has_records():
            if resume_step is None:
                raise RunDirError(
                    f"{run.path} already holds the records of a run; open it with "
                    "RunSetup(path, resume_step=S) to continue it after step S, or choose "
                    "another run directory"
                )
            earlier = run.records(superseded=True)
            self.segment = 1 + max((int(r.get("segment", 0)) for r in earlier), default=0)
            dropped = run.metrics.open()
            self._write([{"type": "resume", "step": int(resume_step), "dropped_bytes": dropped}])
        else:
            run.metrics.open()
            self._started = False  # the start record names the first step, written by step()
        if not run.run_file.exists():
            info = self._run_info()
            for key, value in setup.info.items():  # one level deep: sections merge
                both = isinstance(value, Mapping) and isinstance(info.get(key), Mapping)
                info[key] = {**info[key], **value} if both else value
            run.write_json(RUN_FILE, info)

    def _run_info(self) -> dict[str, Any]:
        parameters = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "monitor",
            "model": {
                "class": type(self.model).__name__,
                "spec": getattr(self.model, "spec", None),
                "parameters": parameters,
                "trainable_parameters": trainable,
                "sites": [s.name for s in self._batch_probe.sites],
            },
            "monitor": self.settings(),
            "config": {},
            "environment": environment(self._device()),
        }

    def settings(self) -> dict[str, Any]:
        """The monitor's own settings, as stored in run.json."""
        return {
            "every": self.every,
            "gradients": self.gradients,
            "redundancy": self._batch_probe.redundancy,
            "probe_set": self._probe_rows or None,
            "watched": self.watched,
            "dead_warning": self.dead_warning,
            "thresholds": self.thresholds.to_dict(),
            "world_size": self.world,
        }

    def _write(self, records: list[dict[str, Any]]) -> None:
        if self.rank != 0 or not records:
            return
        now = round(time.time(), 3)
        for record in records:
            record.setdefault("segment", self.segment)
            record.setdefault("time", now)
        self.run.metrics.write(records)
        self._latest.add(records)
        for writer in self._writers:
            writer.write(records)

    # --- steps ---------------------------------------------------------------------------------

    def due(self, step: int) -> bool:
        """Whether ``step`` is one the monitor records by its schedule (``step % every == 0``)."""
        return step % self.every == 0

    def step(self, step: int, record: bool | None = None) -> MonitoredStep:
        """The context of one training step; ``record`` overrides the schedule for this step."""
        return MonitoredStep(self, int(step), self.due(step) if record is None else bool(record))

    def _begin(self, handle: MonitoredStep) -> None:
        if self._closed:
            raise RuntimeError("this Monitor is closed")
        if self._pending is not None and handle.step != self._pending["step"]:
            self.flush()
        self._ensure_started(handle.step)
        self._interval += 1
        self._last_step = handle.step
        if handle.recording:
            self._batch_probe.reset()
            self._batch_probe.attach()

    def _end(self, handle: MonitoredStep, failed: bool) -> None:
        if not handle.recording:
            return
        try:
            self._batch_probe.detach()
        finally:
            if failed:
                self._batch_probe.reset()
        if not failed:
            self._record(handle.step)

    def log(self, **values: float | Tensor) -> None:
        """Values of this step (loss, lr, accuracy...): each step record holds their means over
        the steps since the previous record. Cheap: call it every step."""
        for name, value in values.items():
            if isinstance(value, Tensor):
                value = value.detach()
                if value.device.type == "cpu" or value.numel() != 1:
                    value = float(value.float().mean().item())
            else:
                value = float(value)
            previous = self._sums.get(name)
            self._sums[name] = value if previous is None else previous + value
            self._counts[name] = self._counts.get(name, 0) + 1

    def record(self, kind: str, **fields: Any) -> None:
        """Write one record of your own (``type`` = ``kind``), e.g. an evaluation; its ``step``
        is the current step unless ``fields`` names one."""
        record: dict[str, Any] = {"type": kind}
        if self._last_step is not None:
            record["step"] = self._last_step
        record.update(fields)
        if isinstance(record.get("step"), int):
            self._ensure_started(record["step"])
        self._write([record])

    def _ensure_started(self, step: int) -> None:
        if not self._started:
            self._started = True
            self._write([{"type": "start", "step": step}])

    def flush(self) -> None:
        """Write the pending step record (values logged since the previous one)."""
        pending, self._pending = self._pending, None
        if pending is None and not self._sums:
            return
        if pending is None:
            pending = {"type": "step", "step": self._last_step}
        values = {name: self._mean(name) for name in self._sums}
        pending["steps"] = self._interval
        pending.update(values)
        self._sums, self._counts, self._interval = {}, {}, 0
        self._write([pending])
        self._emit(self._warnings.from_values(int(pending["step"] or 0), values))
        if "loss" in values:
            self.latest["loss"] = values["loss"]

    def _mean(self, name: str) -> float:
        total = self._sums[name]
        if isinstance(total, Tensor):
            total = float(total.float().item())
        return total / self._counts[name]

    # --- a recorded step -----------------------------------------------------------------------

    def _record(self, step: int) -> None:
        distributed = self.world > 1
        try:
            results = {BATCH: self._batch_probe.results(distributed=distributed)}
        finally:
            self._batch_probe.reset()
        probe_loss = None
        if self._set_probe is not None:
            chunk = self.probe_batch_size or _chunk_rows(results[BATCH])
            results[PROBE_SET], probe_loss = self._run_probe_set(distributed, chunk)
        self._pending = {"type": "step", "step": step}
        if probe_loss is not None:
            self._pending["probe_loss"] = probe_loss
        if self.rank != 0:
            return
        records = [
            site_record(step, inputs, site)
            for inputs, result in results.items()
            for site in result.all_sites()
        ]
        events = self._warnings.from_sites(step, results, self.watched)
        self._write(records + [e.record() for e in events])
        self._emit(events, written=True)
        watched = results[self.watched]
        self.latest.update(
            step=step,
            output_variability=None if watched.output is None else watched.output.variability,
            network_collapsed=watched.network_collapsed,
        )

    def _device(self) -> torch.device:
        return model_device(self.model)

    def _run_probe_set(self, distributed: bool, size: int) -> tuple[ProbeResults, float | None]:
        probe = self._set_probe
        assert probe is not None and self._probe_inputs is not None
        model = self.model
        device = self._device()
        loss_sum, rows = 0.0, 0
        probe.reset()
        probe.attach()
        try:
            with evaluating(model):
                for start in range(0, len(self._probe_inputs), size):
                    outputs = model(self._probe_inputs[start : start + size].to(device))
                    if self.loss_fn is not None and self._probe_targets is not None:
                        targets = self._probe_targets[start : start + size].to(device)
                        loss = self.loss_fn(outputs, targets)
                        loss_sum += float(loss) * len(targets)
                        rows += len(targets)
                    del outputs
            results = probe.results(distributed=distributed)
        finally:
            probe.detach()
            probe.reset()
        if self._probe_targets is None:
            return results, None
        if distributed:
            import torch.distributed as dist

            total = torch.tensor([loss_sum, float(rows)], dtype=torch.float64, device=device)
            dist.all_reduce(total)
            loss_sum, rows = float(total[0]), int(total[1])
        return results, loss_sum / rows if rows else None

    # --- events --------------------------------------------------------------------------------

    def _emit(self, events: list[Event], written: bool = False) -> None:
        if self.rank != 0 or not events:
            return
        if not written:
            self._write([e.record() for e in events])
        for event in events:
            self.events.append(event)
            if self._on_event is not None:
                self._on_event(event)
            elif not (self._warn or self._quiet):  # a warning is printed already: not twice
                print(f"variability: {event.message}", file=sys.stderr, flush=True)
            if self._warn:  # Python prints it, once, pointing at the caller's line
                warnings.warn(event.message, MonitorWarning, stacklevel=_caller_level())

    # --- state, closing ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs so a resumed run does not repeat its warnings, and can write
        again the records of the checkpoint's step if a torn line lost them (call it after
        ``flush``)."""
        return {**self._warnings.state_dict(), "step_records": self._latest.state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint's state; in a resumed run, write again the records of the
        checkpoint's step that the metrics file lost (step_records.py says why)."""
        self._warnings.load_state_dict(state)
        saved = state.get("step_records") or []
        if self.rank != 0 or self.segment == 0 or not saved:
            return
        earlier = [r for r in self.run.records() if r.get("segment", 0) < self.segment]
        self._write(lost_records(saved, earlier))

    def sync(self) -> None:
        """Write the pending record and force the metrics file to disk."""
        self.flush()
        if self.rank == 0:
            self.run.metrics.sync()

    def close(self) -> None:
        """Write what is pending and close the files; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self.run.metrics.close()
            for writer in self._writers:
                writer.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Monitor({len(self._batch_probe.sites)} sites, every={self.every}, "
            f"run_dir={str(self.run.path)!r})"
        )


CHUNK_VALUES = 1 << 19


def _chunk_rows(batch: ProbeResults) -> int:
    """Probe-set rows per forward pass: about ``CHUNK_VALUES`` values at the widest site (so the
    hooks' passes over a site's tensor find it in cache), from 256 to 8192 rows."""
    rows = max(batch.samples, 1)
    widest = max((s.samples * s.units for s in batch.all_sites()), default=0) / rows
    return int(min(8192, max(256, CHUNK_VALUES // max(widest, 1))))


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this file."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def site_record(step: int, inputs: str, site: SiteResult) -> dict[str, Any]:
    """One ``probe`` record: a site's figures at a step, from one kind of inputs."""
    record: dict[str, Any] = {"type": "probe", "step": step, "inputs": inputs, "site": site.name}
    for name in SITE_FIELDS:
        record[name] = getattr(site, name)
    if site.redundancy is not None:
        record["redundancy"] = site.redundancy
    if site.gradient_rms is not None:
        record["gradient_rms"] = site.gradient_rms
    return record


__all__ = ["Monitor", "MonitoredStep", "RecordWriter"]
