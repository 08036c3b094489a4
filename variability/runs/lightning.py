"""A PyTorch Lightning callback that runs a Monitor inside ``Trainer.fit`` (the ``lightning``
extra).

    trainer = pl.Trainer(callbacks=[MonitorCallback("runs/exp1", every=50, probe_inputs=grid)])

Each training batch is one monitored step, numbered by ``trainer.global_step`` (the optimizer
updates done before it); the loss the LightningModule returns and the learning rate of its first
optimizer are logged. Under DDP every rank runs the callback and rank 0 writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from variability.errors import UserError
from variability.runs.monitor import Monitor, MonitoredStep
from variability.runs.run_dir import RunSetup

try:
    from pytorch_lightning import Callback
except ImportError:  # pragma: no cover - depends on which Lightning package is installed
    try:
        from lightning.pytorch import Callback  # type: ignore[no-redef]
    except ImportError:
        raise UserError(
            "the Lightning callback needs PyTorch Lightning: pip install 'variability[lightning]'"
        ) from None


class MonitorCallback(Callback):
    """Records the probe's figures every ``every`` training steps into ``run_dir``.

    Keyword arguments go to ``Monitor`` (``probe_inputs``, ``sites``, ``dead_warning``...). A fit
    that starts from a checkpoint (``global_step`` above 0) continues the run directory's records
    after that step.
    """

    def __init__(self, run_dir: str | os.PathLike[str], every: int = 50, **options: Any) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.every = every
        self.options = options
        self.monitor: Monitor | None = None
        self._current: MonitoredStep | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        start = int(trainer.global_step)
        setup = RunSetup(self.run_dir, resume_step=start if start > 0 else None)
        self.monitor = Monitor(pl_module, setup, every=self.every, **self.options)

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.monitor is not None:
            self._current = self.monitor.step(int(trainer.global_step)).begin()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        current, self._current = self._current, None
        if current is None or self.monitor is None:
            return
        current.end()
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        values: dict[str, Any] = {}
        if isinstance(loss, Tensor):
            values["loss"] = loss
        if trainer.optimizers:
            values["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self.monitor.log(**values)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.end(failed=True)
        self._close()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def _close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
