"""``variability compare``: FC, LCW and Han at one parameter budget, over depths and seeds.

Every cell (family x depth x init x seed) is built at equal parameters, probed at initialisation,
trained with a Monitor, selected on the validation split and scored on the test split. One file
per idea: ``settings`` (what decides the results), ``plan`` (the cells, sized at the budget),
``folder`` (the files a comparison keeps), ``cells`` (one cell, and many at once), ``run``
(running or resuming a comparison, reading one back), ``report_data`` (what its report draws,
read from the folder). docs/compare.md documents the formats.
"""

from variability.experiments.comparison.folder import (
    CELLS,
    REPORT,
    RESULTS,
    SETTINGS,
    ResultsFile,
    check_settings,
    folder_lock,
    read_settings,
)
from variability.experiments.comparison.plan import Cell, plan_cells
from variability.experiments.comparison.run import Comparison, compare, load_comparison
from variability.experiments.comparison.settings import (
    INITS,
    QUICK,
    CompareError,
    CompareSettings,
)

__all__ = [
    "CELLS",
    "INITS",
    "QUICK",
    "REPORT",
    "RESULTS",
    "SETTINGS",
    "Cell",
    "CompareError",
    "CompareSettings",
    "Comparison",
    "ResultsFile",
    "check_settings",
    "compare",
    "folder_lock",
    "load_comparison",
    "plan_cells",
    "read_settings",
]
