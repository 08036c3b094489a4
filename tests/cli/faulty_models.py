"""Models whose forward fails, for `--arch tests.cli.faulty_models:make` (tests of model faults).

All share one architecture (2 -> 4 -> 1, ReLU), so one state dict fits each; ``--arch-kwargs``
chooses the fault. Call 1 is the probe's first check (2 inputs); batch k of the probe is call
k + 1.
"""

from __future__ import annotations

import sys

import torch
from torch import nn


class Faulty(nn.Module):
    def __init__(
        self, fault: str = "none", rows: int = 2, call: int = 1, code: int | None = 0
    ) -> None:
        super().__init__()
        self.first = nn.Linear(2, 4)
        self.act = nn.ReLU()
        self.last = nn.Linear(4, 1)
        self.fault, self.rows, self.call, self.code = fault, rows, call, code
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.fault == "rows" and len(x) > self.rows:
            raise RuntimeError(f"cannot take {len(x)} rows\nthe second line of the message")
        if self.fault == "call" and self.calls == self.call:
            raise ValueError(f"call {self.calls} went wrong")
        if self.fault == "exit" and self.calls == self.call:
            sys.exit(self.code)
        if self.fault == "always":
            raise TypeError("this model never works")
        return self.last(self.act(self.first(x)))


def make(**kwargs) -> Faulty:
    torch.manual_seed(0)
    return Faulty(**kwargs)


ARCH = "tests.cli.faulty_models:make"
