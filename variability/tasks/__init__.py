"""The problems the toolkit compares architectures on, as tensors with fixed, seeded splits.

``load_task(name, seed=0)`` for name in "checkerboard", "digits", "diabetes", "breast_cancer",
"friedman1". Everything here is local: scikit-learn ships these data sets, nothing is downloaded.
"""

from variability.tasks.checkerboard import checkerboard_grid, checkerboard_labels, load_checkerboard
from variability.tasks.registry import TASKS, load_task, task_names
from variability.tasks.sklearn_data import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_friedman1,
)
from variability.tasks.task import LOSSES, METRICS, Grid, Task, TaskError, accuracy, r2_score

__all__ = [
    "LOSSES",
    "METRICS",
    "TASKS",
    "Grid",
    "Task",
    "TaskError",
    "accuracy",
    "checkerboard_grid",
    "checkerboard_labels",
    "load_breast_cancer",
    "load_checkerboard",
    "load_diabetes",
    "load_digits",
    "load_friedman1",
    "load_task",
    "r2_score",
    "task_names",
]
