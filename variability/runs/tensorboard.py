"""TensorBoard scalars from a Monitor's records (the ``tensorboard`` extra).

Tags, grouped as TensorBoard shows them: ``variability/INPUTS/SITE``,
``activation_ratio/INPUTS/SITE``, ``dead_fraction/INPUTS/SITE``, ``gradient_rms/SITE`` (training
batches), ``train/NAME`` for logged values, ``SPLIT/NAME`` for evaluations; warnings as text.
INPUTS is ``batch`` or ``probe_set``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from variability.errors import UserError

SITE_SCALARS = ("variability", "activation_ratio", "dead_fraction")
NOT_VALUES = {"type", "step", "steps", "segment", "time", "split", "best"}


class TensorBoardWriter:
    """Writes every record it gets as TensorBoard scalars under ``log_dir``."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError(
                "TensorBoard scalars need the tensorboard package: "
                "pip install 'variability[tensorboard]'"
            ) from None
        self.log_dir = str(log_dir)
        self._writer = SummaryWriter(self.log_dir)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        add = self._writer.add_scalar
        for record in records:
            step = record.get("step")
            if not isinstance(step, int):
                continue
            kind = record.get("type")
            if kind == "probe":
                where = f"{record['inputs']}/{record['site']}"
                for name in SITE_SCALARS:
                    if _number(record.get(name)):
                        add(f"{name}/{where}", record[name], step)
                if _number(record.get("gradient_rms")):
                    add(f"gradient_rms/{record['site']}", record["gradient_rms"], step)
            elif kind in ("step", "eval"):
                group = "train" if kind == "step" else str(record.get("split", "eval"))
                for name, value in record.items():
                    if name not in NOT_VALUES and _number(value):
                        add(f"{group}/{name}", value, step)
            elif kind == "event":
                self._writer.add_text("warnings", str(record.get("message", "")), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
