"""The executor a command was asked for by name: ``local`` (this machine) or ``ray`` (a cluster).

Ray is an optional extra: it is imported only here, when asked for, and a missing install is
one clear line naming the extra rather than a traceback.
"""

from __future__ import annotations

from variability.errors import UserError
from variability.experiments.jobs import Executor, LocalExecutor, Say

__all__ = ["EXECUTORS", "RAY_HINT", "open_executor"]

EXECUTORS = ("local", "ray")
RAY_HINT = (
    "--executor ray needs Ray, which is not installed: "
    'pip install "variability[ray]" (or pip install ray)'
)


def open_executor(
    name: str = "local",
    *,
    address: str | None = None,
    fail_fast: bool = False,
    say: Say | None = None,
) -> Executor:
    """The executor ``name``, connected and ready; close it (or use it in ``with``) when done.

    ``address``: the Ray cluster (``host:port``, ``ray://host:port``; None: a running cluster
    if Ray finds one, else a local one started for the run). ``fail_fast``: the first failed job
    stops new ones. ``say``: where retries and failures are told as they happen.
    """
    if name == "local":
        if address is not None:
            raise UserError("--ray-address applies to --executor ray only")
        return LocalExecutor(fail_fast=fail_fast, say=say)
    if name == "ray":
        try:
            from variability.experiments.ray_pool import RayExecutor
        except ImportError as error:
            if (error.name or "").split(".")[0] != "ray":
                raise
            raise UserError(RAY_HINT) from None
        return RayExecutor(address, fail_fast=fail_fast, say=say)
    raise UserError(f"unknown executor {name!r}: use {' or '.join(EXECUTORS)}")
