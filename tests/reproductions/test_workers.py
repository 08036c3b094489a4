"""The runner: full sizes plan without error; a worker's error travels back in one piece."""

from __future__ import annotations

import pickle

import pytest

from variability.arch import BudgetError, solve_width
from variability.errors import UserError
from variability.experiments.reproductions import REPRODUCTIONS, Options
from variability.experiments.reproductions.workers import WorkerError, call, run_jobs


@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_every_full_size_reproduction_plans_its_models(name):
    """Sizes are solved when planning, in the calling process: a budget a family cannot meet
    fails here, before any work, not inside a worker."""
    assert REPRODUCTIONS[name].units(Options()) > 0


def refuse(job):
    solve_width("fc", job, 128, 2, 1)  # 4 units at depth 128 fall 15% short of 3,000


def divide(job):
    return 1 / job


def test_an_error_that_does_not_pickle_comes_back_as_a_user_error_with_its_message():
    with pytest.raises(BudgetError) as raised:
        refuse(3000)
    with pytest.raises(Exception):  # noqa: B017 - what pickle raises for it is its own affair
        pickle.loads(pickle.dumps(raised.value))
    with pytest.raises(UserError) as replaced:
        call(refuse, 3000)
    assert str(replaced.value) == str(raised.value)
    assert pickle.loads(pickle.dumps(replaced.value)).args == replaced.value.args
    with pytest.raises(ZeroDivisionError):  # errors that pickle travel as themselves
        call(divide, 0)
    assert issubclass(WorkerError, RuntimeError) and call(divide, 4) == 0.25


def test_results_come_back_in_job_order_and_each_is_reported():
    import torch

    done = []
    results = run_jobs(
        divide,
        [1, 2, 4],
        device=torch.device("cpu"),
        workers=1,
        on_done=lambda j, r: done.append(j),
    )
    assert results == [1.0, 0.5, 0.25] and done == [1, 2, 4]
