"""Hypothesis profiles: the same examples on every CI run, fresh ones on every local run.

- ``ci`` (selected when ``CI`` is true, as .ci/run sets it): ``derandomize=True`` draws the
  examples from a seed fixed by each test's source, and ``database=None`` keeps no examples
  saved from earlier runs, so a landing never depends on luck or on a machine's history; no
  deadline either, since a CI machine's load is not the code's fault. (Hypothesis has a
  built-in profile of that name, loaded when it detects CI; this one replaces it, so what CI
  runs is written here, whatever the Hypothesis version.)
- ``dev`` (every other run): random examples, failures saved in ``.hypothesis/`` and replayed
  first on the next run, and the blob to reproduce a failure printed.

``HYPOTHESIS_PROFILE=ci`` (or ``dev``) chooses one explicitly.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", print_blob=True)


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


settings.load_profile(_profile())
