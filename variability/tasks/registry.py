"""Tasks by name: ``load_task("checkerboard", seed=0)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from variability.tasks.checkerboard import load_checkerboard
from variability.tasks.sklearn_data import LOADERS as SKLEARN_LOADERS
from variability.tasks.task import Task, TaskError

__all__ = ["TASKS", "load_task", "task_names"]

TASKS: dict[str, Callable[..., Task]] = {"checkerboard": load_checkerboard, **SKLEARN_LOADERS}


def task_names() -> list[str]:
    return list(TASKS)


def load_task(name: str, seed: int = 0, **options: Any) -> Task:
    """The task called ``name``, split by ``seed``; ``options`` go to its loader.

    Options: ``val_fraction`` (all tasks), ``train_fraction`` (checkerboard), ``test_fraction``
    (scikit-learn tasks), ``n_samples`` and ``noise`` (friedman1).
    """
    loader = TASKS.get(name)
    if loader is None:
        raise TaskError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TaskError(f"seed must be an integer >= 0, got {seed!r}")
    accepted = [p for p in inspect.signature(loader).parameters if p != "seed"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TaskError(
            f"task {name!r} takes no option {', '.join(unknown)}; "
            f"its options: {', '.join(accepted)}"
        )
    return loader(seed=seed, **options)
