"""How to train: the settings of one training run (``TrainConfig``) and their checks.

The trainer (trainer.py), the training loop (loop.py) and the protocols (protocol.py) all read
it; it lives on its own so that none of them imports another just for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from variability.errors import UserError
from variability.runs.batches import SAMPLINGS
from variability.runs.schedule import StepDecay

__all__ = ["OPTIMIZERS", "TrainConfig", "TrainConfigError"]

OPTIMIZERS = ("adam", "sgd")


class TrainConfigError(UserError):
    """A training setting that cannot work (a step count below 1, an unknown optimizer...)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train: steps, optimizer, batches, and how often to monitor, evaluate and checkpoint.

    ``seed`` orders the training batches (the model's own seed is in its spec). ``eval_every``
    and ``checkpoint_every`` default to ``every``. ``probe_rows`` caps the fixed probe set for
    tasks without an input grid. ``momentum`` applies to SGD only. ``lr_milestones`` (fractions
    of the run) and ``lr_factor``: the rate is multiplied by the factor at each milestone
    (schedule.StepDecay). ``sampling``: "epochs" or "independent" batches (batches.SAMPLINGS).
    """

    steps: int = 2000
    lr: float = 3e-3
    optimizer: str = "adam"
    batch_size: int = 128
    seed: int = 0
    every: int = 50
    eval_every: int | None = None
    checkpoint_every: int | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    probe_rows: int = 8192
    redundancy: bool = False
    dead_warning: float = 0.5
    lr_milestones: tuple[float, ...] = ()
    lr_factor: float = 0.2
    sampling: str = "epochs"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "every", "probe_rows"):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0)
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if self.optimizer not in OPTIMIZERS:
            raise TrainConfigError(
                f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}"
            )
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise TrainConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lr <= 0:
            raise TrainConfigError(f"lr must be above 0, got {self.lr!r}")
        if self.sampling not in SAMPLINGS:
            raise TrainConfigError(
                f"unknown sampling {self.sampling!r}; known: {', '.join(SAMPLINGS)}"
            )
        try:
            object.__setattr__(self, "lr_milestones", tuple(float(m) for m in self.lr_milestones))
            self.schedule  # noqa: B018 (checks the milestones and the factor)
        except (TypeError, ValueError) as error:
            raise TrainConfigError(f"learning-rate schedule: {error}") from None

    @property
    def schedule(self) -> StepDecay:
        return StepDecay(self.lr_milestones, self.lr_factor)

    @property
    def eval_interval(self) -> int:
        return self.eval_every or self.every

    @property
    def checkpoint_interval(self) -> int:
        return self.checkpoint_every or self.eval_interval

    def to_dict(self) -> dict[str, Any]:
        """As stored in run.json (tuples as lists, so a read-back compares equal)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TrainConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
