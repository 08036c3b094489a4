"""How options that take a name show their choices in ``--help``: ``<adam|sgd>``.

The values stay plain text on the command line, so a wrong name is the command's own one-line
error ("unknown optimizer 'rmsprop'; known: adam, sgd"), checked where the settings are made;
the choices come from the lists they mirror, so a new task, family or optimizer shows at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from variability.arch import FAMILIES
from variability.runs.trainer import OPTIMIZERS
from variability.tasks import task_names

__all__ = ["FAMILY_CHOICES", "FAMILY_LIST", "OPTIMIZER_CHOICES", "TASK_HELP", "one_of"]


def one_of(names: Sequence[str]) -> str:
    return "<" + "|".join(names) + ">"


FAMILY_CHOICES = one_of(FAMILIES)
FAMILY_LIST = FAMILY_CHOICES + ",..."
OPTIMIZER_CHOICES = one_of(OPTIMIZERS)
TASK_HELP = (
    "The problem: " + ", ".join(task_names()[:-1]) + f" or {task_names()[-1]} (docs/tasks.md)."
)
"""Tasks are listed in the help text: as a metavar they would fill half a terminal's width."""
