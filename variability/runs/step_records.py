"""The records of a checkpoint's own step, carried in the checkpoint and written again if lost.

A resumed run cuts off a torn last line of ``metrics.jsonl`` and continues after the checkpoint's
step S. The last lines written before a checkpoint are step S's own records (its step record
comes last, at the flush before the checkpoint), and the resumed run never writes step S again:
a torn step-S line would leave a hole (step records jumping from 750 to 850). So the monitor
keeps the records of the latest step it wrote, the checkpoint carries them, and a resumed run
writes again those that the file no longer holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from variability.runs.run_dir import record_line

__all__ = ["LatestStepRecords", "lost_records"]

_WHEN_WRITTEN = ("segment", "time", "superseded")
"""Fields that say when and by whom a line was written, not what it records."""


class LatestStepRecords:
    """The records written for the latest step (as written, segment and time included)."""

    def __init__(self) -> None:
        self.step: Any = None
        self.records: list[dict[str, Any]] = []

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            if record.get("type") == "resume":
                continue  # a resumed run's own marker, not a record of the step
            step = record.get("step")
            if step != self.step:
                self.step, self.records = step, []
            self.records.append(dict(record))

    def state(self) -> list[dict[str, Any]]:
        """The records as the file holds them (plain JSON values: no NumPy scalar, NaN as None),
        so a checkpoint carrying them still loads with ``weights_only=True``."""
        return [json.loads(record_line(r)) for r in self.records]


def lost_records(
    saved: Iterable[Mapping[str, Any]], written: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The ``saved`` records that ``written`` (the file's earlier records) no longer holds,
    without the fields of their first writing (the resumed run writes them anew)."""
    present = {_key(r) for r in written}
    return [
        {k: v for k, v in r.items() if k not in _WHEN_WRITTEN}
        for r in saved
        if _key(r) not in present
    ]


def _key(record: Mapping[str, Any]) -> str:
    return json.dumps(json.loads(record_line(record)), sort_keys=True)
