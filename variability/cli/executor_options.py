"""The options ``compare`` and ``reproduce`` share to choose where their models train, and how
those commands report models that failed.

``--executor local|ray``, ``--ray-address`` and ``--fail-fast`` become an open ``Executor``
(``experiments.executors``); a failed model is told on stderr as it happens, and once all the
others have ended the command exits with ``EXIT_FAILED`` naming each one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer

from variability.cli.console import stderr
from variability.experiments.executors import open_executor
from variability.experiments.jobs import Executor, JobsFailed, describe_error

__all__ = [
    "EXIT_FAILED",
    "ExecutorOption",
    "FailFastOption",
    "RayAddressOption",
    "chosen_executor",
    "report_failures",
]

EXIT_FAILED = 1
"""Some models failed; the others finished and were kept."""

ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where the models train: local (processes of this machine) or ray (a Ray cluster, "
        'every CPU and GPU of it; needs pip install "variability\\[ray]").',
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster, host:port (default: a running cluster if Ray finds one, else a "
        "local one started for this run).",
    ),
]
FailFastOption = Annotated[
    bool,
    typer.Option(
        "--fail-fast",
        help="Stop starting models at the first that fails (default: the others go on, and "
        "every failure is named at the end).",
    ),
]


@contextlib.contextmanager
def chosen_executor(
    name: str, address: str | None, fail_fast: bool, quiet: bool
) -> Iterator[Executor]:
    """The executor asked for, open for the block; failures and retries told on stderr."""
    executor = open_executor(
        name,
        address=address,
        fail_fast=fail_fast,
        say=None if quiet else lambda line: stderr().print(line, highlight=False, markup=False),
    )
    try:
        yield executor
    finally:
        executor.close()


def report_failures(failed: JobsFailed, kept: str) -> typer.Exit:
    """Name every failed model on stderr (``kept``: where the others are); the Exit to raise."""
    console = stderr()
    console.print(
        f"error: {len(failed.failures)} of {failed.total} models failed; {kept}. Run the same "
        "command again to retry the failed ones:",
        highlight=False,
        markup=False,
    )
    for name, error in failed.failures:
        console.print(f"  {name}: {describe_error(error)}", highlight=False, markup=False)
    return typer.Exit(EXIT_FAILED)
