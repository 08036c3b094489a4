"""A comparison's settings: everything that decides its results, checked when made.

``QUICK`` is what ``variability compare`` runs without arguments (docs/compare.md says why).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from variability.arch import DEFAULT_TOLERANCE, FAMILIES
from variability.arch.layouts import HAN_LAYOUTS, dense_layers_for
from variability.errors import UserError
from variability.remedy import METHODS as REMEDY_METHODS
from variability.runs.config import OPTIMIZERS, TrainConfig
from variability.runs.protocol import PROTOCOLS
from variability.tasks import Task, load_task

DEFAULT_INITS = ("default",)
INITS = ("default", *REMEDY_METHODS)
"""A comparison's initialisations: the family's own, or a remedy method applied to it."""


class CompareError(UserError):
    """A comparison that cannot run as asked: bad settings, a budget, another run's folder."""


@dataclass(frozen=True)
class CompareSettings:
    """Everything that decides a comparison's results (a rerun must match them to resume).

    The defaults are the quick comparison (``QUICK``; docs/compare.md says why).
    ``tolerance`` is DEFINITIONS.md's rule of equal parameter counts, for every comparison: each
    family takes the width whose count is nearest the budget, and a family that cannot come
    within 5% of it is refused. ``every``: record the probe's figures every this many steps
    (default: a tenth of the steps). ``inits``: how each model's weights start, a factor of the
    comparison: ``"default"`` (the family's own initialisation) or a remedy method
    (``variability.remedy.METHODS``), applied to the same built model, so that the inits of one
    seed start from the same weights.
    """

    task: str = "checkerboard"
    params: int = 2857
    depths: tuple[int, ...] = (2, 6)
    families: tuple[str, ...] = FAMILIES
    seeds: int = 3
    steps: int = 1000
    lr: float = 1e-2
    optimizer: str = "adam"
    batch_size: int = 512
    tolerance: float = DEFAULT_TOLERANCE
    every: int | None = None
    task_seed: int = 0
    protocol: str = "default"
    han_layout: str = "default"
    inits: tuple[str, ...] = ("default",)

    def __post_init__(self) -> None:
        for name in ("params", "seeds", "steps", "batch_size"):
            _check_int(name, getattr(self, name), 1)
        _check_int("task_seed", self.task_seed, 0)
        if self.every is not None:
            _check_int("every", self.every, 1)
        if not self.depths:
            raise CompareError("no depths to compare: give at least one, e.g. --depths 2,8,32")
        for depth in self.depths:
            _check_int("every depth", depth, 1)
        if len(set(self.depths)) != len(self.depths):
            raise CompareError(f"depths repeat: {','.join(map(str, self.depths))}")
        _check_names(("family", "families"), self.families, FAMILIES)
        if self.optimizer not in OPTIMIZERS:
            raise CompareError(
                f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}"
            )
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise CompareError(f"lr must be a finite number above 0, got {self.lr!r}")
        if not 0.0 <= self.tolerance < 1.0:
            raise CompareError(f"tolerance must be at least 0 and below 1, got {self.tolerance!r}")
        if self.protocol not in PROTOCOLS:
            raise CompareError(f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}")
        if self.han_layout not in HAN_LAYOUTS:
            raise CompareError(
                f"unknown Han layout {self.han_layout!r}; known: {', '.join(HAN_LAYOUTS)}"
            )
        _check_names(("init", "inits"), self.inits, INITS)

    @property
    def varies_init(self) -> bool:
        """Whether the initialisation is a factor: any init other than the family's own."""
        return self.inits != DEFAULT_INITS

    @property
    def record_every(self) -> int:
        return self.every or max(1, self.steps // 10)

    def train_config(self, seed: int) -> TrainConfig:
        """How every cell trains, by the protocol (runs/protocol.py) with the comparison's own
        steps, rate, optimizer and batch size; ``seed`` orders its batches."""
        return PROTOCOLS[self.protocol].train_config(
            steps=self.steps,
            lr=self.lr,
            optimizer=self.optimizer,
            batch_size=self.batch_size,
            seed=seed,
            every=self.record_every,
        )

    def dense_layers(self, family: str, depth: int) -> tuple[int, ...]:
        """A model's dense hidden layers: the Han layout's for Han, all of them otherwise."""
        return dense_layers_for(family, depth, self.han_layout if family == "han" else None)

    def load_task(self) -> Task:
        """The task every cell trains on, with the comparison's split seed (and the protocol's
        task options: the paper's two output columns on the checkerboard)."""
        return load_task(
            self.task, self.task_seed, **PROTOCOLS[self.protocol].options_for(self.task)
        )

    @property
    def task_key(self) -> tuple[Any, ...]:
        """What decides ``load_task()``'s result: name, split seed and the protocol's options (a
        process that loads tasks once keys them by it)."""
        options = PROTOCOLS[self.protocol].options_for(self.task)
        return (self.task, self.task_seed, tuple(sorted(options.items())))

    def to_json(self) -> dict[str, Any]:
        """As stored in compare.json; settings added since (protocol, Han layout, inits) only
        when they are not their default, so comparisons started before still resume."""
        data = asdict(self)
        for key in ("depths", "families", "inits"):
            data[key] = list(data[key])
        for key in ("protocol", "han_layout"):
            if data[key] == "default":
                del data[key]
        if self.inits == DEFAULT_INITS:
            del data["inits"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompareSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("depths", "families", "inits"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _check_names(kind: tuple[str, str], names: tuple[str, ...], known: Sequence[str]) -> None:
    """Names of one kind (singular, plural), each known and none twice, at least one."""
    one, many = kind
    if not names:
        raise CompareError(f"no {many} to compare: choose from {', '.join(known)}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CompareError(
            f"unknown {one if len(unknown) == 1 else many} {', '.join(unknown)}; "
            f"known: {', '.join(known)}"
        )
    if len(set(names)) != len(names):
        raise CompareError(f"{many} repeat: {','.join(names)}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CompareError(f"{name} must be an integer >= {minimum}, got {value!r}")


QUICK = CompareSettings()
"""The quick comparison ``variability compare`` runs without arguments: FC, LCW and Han at 2,857
parameters (every family within 5% of it, the same widths whether the nearest count lies above
or below), depths 2 and 6, 3 seeds, 1,000 steps of Adam."""


__all__ = ["DEFAULT_INITS", "INITS", "QUICK", "CompareError", "CompareSettings"]
