"""Early warnings of a monitored run: a site collapsing, units dying, NaN or Inf.

Each warning is an ``Event`` with a key (kind and site); ``EventLog`` turns a recorded step's
figures into the events that are new, so that a reader is told each thing once, however many
steps show it, and its state travels in checkpoints so a resumed run does not repeat itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from variability.probes import ProbeResults, Status, Thresholds, too_many_dead

BATCH = "batch"
PROBE_SET = "probe_set"
"""The inputs a recorded figure comes from: the step's training batch or the fixed probe set."""


class MonitorWarning(UserWarning):
    """An early warning from a Monitor: collapse, dead units, or NaN/Inf during training."""


@dataclass(frozen=True)
class Event:
    """Something a reader should know about a run, recorded once (``kind`` + ``site`` is its key).

    kind: "collapsing", "collapsed", "dead_units" or "nonfinite". ``site`` is a probe site's name,
    "output" for the network's output, or the name of a logged value (for "nonfinite").
    """

    step: int
    kind: str
    site: str
    inputs: str
    value: float | None
    message: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.site}"

    def record(self) -> dict[str, Any]:
        return {
            "type": "event",
            "step": self.step,
            "kind": self.kind,
            "site": self.site,
            "inputs": self.inputs,
            "value": self.value,
            "message": self.message,
        }


class EventLog:
    """Which warnings were given already, and what a step's figures add to them.

    Collapse and dead units are judged on the ``watched`` inputs (the probe set when there is
    one: the same inputs at every step); NaN/Inf on any inputs.
    """

    def __init__(self, thresholds: Thresholds, dead_warning: float) -> None:
        self.thresholds = thresholds
        self.dead_warning = dead_warning
        self._seen: set[str] = set()

    def from_sites(
        self, step: int, results: Mapping[str, ProbeResults], watched: str
    ) -> list[Event]:
        events: list[Event] = []
        for inputs, result in results.items():
            for site in result.all_sites():
                if site.nonfinite:
                    events.append(
                        Event(
                            step,
                            "nonfinite",
                            site.name,
                            inputs,
                            float(site.nonfinite),
                            f"step {step}: {site.nonfinite} NaN/Inf values at site "
                            f"{site.name} ({_inputs_label(inputs)}); they are left out of "
                            "every figure",
                        )
                    )
        label = _inputs_label(watched)
        for site in results[watched].all_sites():
            where = _site_label(site.name)
            if site.status == Status.COLLAPSED:
                c2c = ": every input gets practically the same output (C2C)"
                events.append(
                    Event(
                        step,
                        "collapsed",
                        site.name,
                        watched,
                        site.variability,
                        f"step {step}: {where} collapsed: V = {site.variability:.3g} <= "
                        f"{self.thresholds.collapsed:g} ({label})"
                        + (c2c if site.name == "output" else ""),
                    )
                )
            elif site.status == Status.COLLAPSING:
                events.append(
                    Event(
                        step,
                        "collapsing",
                        site.name,
                        watched,
                        site.variability,
                        f"step {step}: {where} is collapsing: V = {site.variability:.3g} <= "
                        f"{self.thresholds.collapsing:g} ({label})",
                    )
                )
            dead = site.dead_fraction
            if dead is not None and too_many_dead(dead, self.dead_warning):
                events.append(
                    Event(
                        step,
                        "dead_units",
                        site.name,
                        watched,
                        dead,
                        f"step {step}: {100 * dead:.0f}% of the units at site {site.name} are "
                        f"dead: never active ({label}; warning from "
                        f"{100 * self.dead_warning:g}%)",
                    )
                )
        return self._new(events)

    def from_values(self, step: int, values: Mapping[str, float]) -> list[Event]:
        """Logged values (loss, lr...) that are NaN or Inf."""
        events = [
            Event(step, "nonfinite", name, "logged", None, f"step {step}: {name} is NaN or Inf")
            for name, value in values.items()
            if not math.isfinite(value)
        ]
        return self._new(events)

    def _new(self, events: list[Event]) -> list[Event]:
        fresh = []
        for event in events:
            if event.key in self._seen:
                continue
            self._seen.add(event.key)
            if event.kind == "collapsed":  # collapsing on the way is no news after that
                self._seen.add(f"collapsing:{event.site}")
            fresh.append(event)
        return fresh

    def state_dict(self) -> dict[str, Any]:
        return {"events": sorted(self._seen)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._seen = set(state.get("events", ()))


def _site_label(name: str) -> str:
    return "the network's output" if name == "output" else f"site {name}"


def _inputs_label(inputs: str) -> str:
    return "on the probe set" if inputs == PROBE_SET else "on the training batch"
