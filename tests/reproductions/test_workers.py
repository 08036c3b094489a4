"""The runner: full sizes plan without error; a worker's error travels back as itself."""

from __future__ import annotations

import pytest

from variability.arch import BudgetError, solve_width
from variability.errors import VariabilityError
from variability.experiments.jobs import JobsFailed, LocalExecutor, run_jobs
from variability.experiments.reproductions import REPRODUCTIONS, Options


@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_every_full_size_reproduction_plans_its_models(name):
    """Sizes are solved when planning, in the calling process: a budget a family cannot meet
    fails here, before any work, not inside a worker."""
    assert REPRODUCTIONS[name].units(Options()) > 0


def refuse(job):
    solve_width("fc", job, 128, 2, 1)  # 4 units at depth 128 fall 15% short of 3,000


def divide(job):
    return 1 / job


def test_an_error_raised_in_a_worker_process_comes_back_as_itself():
    """No wrapper: the job's own BudgetError crosses the process boundary with its fields, both
    with --fail-fast (raised as itself) and by default (held, named, in JobsFailed)."""
    import torch

    with pytest.raises(BudgetError) as raised:
        run_jobs(
            refuse,
            [3000, 3000],
            device=torch.device("cpu"),
            workers=2,
            executor=LocalExecutor(fail_fast=True),
        )
    assert (raised.value.family, raised.value.depth, raised.value.budget) == ("fc", 128, 3000)
    assert isinstance(raised.value, VariabilityError)  # the command line prints it as one line
    with pytest.raises(JobsFailed) as held:
        run_jobs(refuse, [3000, 3000], device=torch.device("cpu"), workers=2)
    assert [name for name, _ in held.value.failures] == ["3000", "3000"]
    assert all(isinstance(e, BudgetError) and e.depth == 128 for _, e in held.value.failures)


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
