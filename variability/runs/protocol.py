"""Training protocols: named training settings that `train`, `compare` and `reproduce` share.

- ``"default"``: the toolkit's own (TrainConfig's defaults: Adam, batches of 128 in epochs).
- ``"paper"``: Yu & Zhang's checkerboard protocol for HanNet and FCNet, as their code has it:
  SGD with momentum 0.9 and no weight decay; each step a batch of 100 distinct training rows
  drawn afresh; 40,000 steps; the learning rate multiplied by 0.2 after 50%, 70% and 90% of the
  run; evaluation every 100 steps; on the checkerboard, two output columns both equal to the
  label, trained with MSE (accuracy thresholds their mean at 0.5). The paper ran a grid of rates
  (``LR_GRIDS``); 0.05 is the default here, the best HanNet rate of a faithful re-run.

A protocol fixes defaults, not choices: anything given explicitly (``--steps``, ``--lr``...) wins.
The split is the task's: the papers trained on 25% of the board and tested on the rest with no
validation set (``val_fraction=0``); the toolkit's default keeps 20% of that 25% for validation,
so that checkpoints are chosen on validation, never on test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from variability.errors import UserError
from variability.runs.config import TrainConfig

__all__ = ["LR_GRIDS", "PROTOCOLS", "Protocol", "protocol_named"]


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    """TrainConfig settings this protocol fixes."""
    task_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per task name, the options its loader gets (the checkerboard's two output columns)."""

    def train_config(self, **explicit: Any) -> TrainConfig:
        """A TrainConfig with the protocol's settings, overridden by those given (not None)."""
        given = {k: v for k, v in explicit.items() if v is not None}
        return TrainConfig(**{**self.config, **given})

    def options_for(self, task: str) -> dict[str, Any]:
        return dict(self.task_options.get(task, {}))


PAPER_STEPS = 40_000

PROTOCOLS: dict[str, Protocol] = {
    "default": Protocol("default", "the toolkit's own: Adam, batches of 128 in epochs"),
    "paper": Protocol(
        "paper",
        "Yu & Zhang's: SGD, momentum 0.9, batches of 100 drawn per step, 40,000 steps, rate "
        "x0.2 after 50/70/90% of the run, evaluation every 100 steps; on the checkerboard two "
        "output columns equal to the label (MSE)",
        config={
            "optimizer": "sgd",
            "momentum": 0.9,
            "weight_decay": 0.0,
            "lr": 0.05,
            "batch_size": 100,
            "steps": PAPER_STEPS,
            "lr_milestones": (0.5, 0.7, 0.9),
            "lr_factor": 0.2,
            "sampling": "independent",
            "eval_every": 100,
        },
        task_options={"checkerboard": {"outputs": 2}},
    ),
}

LR_GRIDS: dict[str, tuple[float, ...]] = {
    "han": (0.025, 0.05, 0.075, 0.1),
    "fc": (0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25),
}
"""The learning rates the Han paper's code tried, for HanNet and for FCNet."""


def protocol_named(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
