"""Faults of the user's model while it runs on the probe set, told in one line.

Whatever the model's forward raises, at whichever batch, becomes a ModelFaultError naming the
batch and the first line of the exception. ``SystemExit`` too: a model that calls ``sys.exit``
must not end the command with its exit code and no output. Ctrl-C (KeyboardInterrupt) is the
user's, not the model's, and passes through.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator

from torch import Tensor

from variability.errors import first_line
from variability.loading.errors import ModelFaultError

__all__ = ["FAULTS", "BatchCounter", "describe_fault", "model_fault"]

FAULTS: tuple[type[BaseException], ...] = (Exception, SystemExit)
"""What a model's forward can raise that is the model's fault."""


def describe_fault(error: BaseException) -> str:
    """``Type: first line`` of what the model raised; for SystemExit, that it called exit."""
    if isinstance(error, SystemExit):
        return f"the model called exit (SystemExit({error.code!r}))"
    return f"{type(error).__name__}: {first_line(error)}"


def model_fault(name: str, where: str, error: BaseException) -> ModelFaultError:
    """The one-line error for a fault of model ``name`` at ``where`` (``batch 3 of 4``...)."""
    return ModelFaultError(f"{name} failed on {where}: {describe_fault(error)}", error)


class BatchCounter:
    """Batches of a probe set, counted as they go into the model and as they come out.

    Iterate over it to feed the model; call ``done`` after each forward pass (``on_batch``).
    ``guard`` turns a fault raised while a batch is in the model into a ModelFaultError naming
    that batch; anything raised between batches (reading inputs, the probe's own errors) passes
    through unchanged.
    """

    def __init__(self, batches: Iterable[Tensor], samples: int, batch_size: int) -> None:
        self._batches = batches
        self.total = max(1, math.ceil(samples / batch_size))
        self.samples = samples
        self.batch_size = batch_size
        self.started = 0
        self.finished = 0

    def __iter__(self) -> Iterator[Tensor]:
        for batch in self._batches:
            self.started += 1
            yield batch

    def done(self) -> None:
        self.finished += 1

    def where(self) -> str:
        k = self.started
        first = (k - 1) * self.batch_size
        last = min(first + self.batch_size, self.samples) - 1
        return f"batch {k} of {self.total} (inputs {first} to {last})"

    @contextlib.contextmanager
    def guard(self, name: str) -> Iterator[None]:
        try:
            yield
        except FAULTS as error:
            if self.started > self.finished:  # raised inside the model's forward pass
                raise model_fault(name, self.where(), error) from None
            raise
