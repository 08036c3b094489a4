"""The papers' results, reproduced with the toolkit (docs/reproductions.md).

``REPRODUCTIONS[name]`` is a ``Reproduction``: ``units(options)`` work units for the progress
bar, ``run(options, advance) -> Outcome``; ``write_outcome(outcome, folder)`` writes its report
and ``results.json``. ``variability reproduce NAME`` does all three.
"""

from variability.experiments.reproductions import (
    han_checkerboard,
    lcw_sigmoid,
    predictor,
    redundancy,
    variability_depth,
)
from variability.experiments.reproductions.base import Options, Outcome, Reproduction, write_outcome

MODULES = (
    variability_depth,
    han_checkerboard,
    lcw_sigmoid,
    redundancy,
    predictor,
)
REPRODUCTIONS: dict[str, Reproduction] = {m.REPRODUCTION.name: m.REPRODUCTION for m in MODULES}

__all__ = ["REPRODUCTIONS", "Options", "Outcome", "Reproduction", "write_outcome"]
