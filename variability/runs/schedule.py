"""Learning-rate schedules as a function of the step alone (so a resumed run needs no state).

``StepDecay``: the rate is multiplied by ``factor`` at each milestone, a fraction of the run. With
40,000 steps and milestones (0.5, 0.7, 0.9), steps 1 to 20,000 use the base rate, 20,001 to 28,000
``factor`` times it, and so on: the Han paper's schedule (factor 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StepDecay"]


@dataclass(frozen=True)
class StepDecay:
    milestones: tuple[float, ...] = ()
    factor: float = 0.2

    def __post_init__(self) -> None:
        if any(not 0.0 < m < 1.0 for m in self.milestones):
            raise ValueError(
                f"milestones are fractions of the run in (0, 1), got {self.milestones}"
            )
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be in increasing order, got {self.milestones}")
        if not self.factor > 0:
            raise ValueError(f"the decay factor must be above 0, got {self.factor}")

    def milestone_steps(self, steps: int) -> tuple[int, ...]:
        """The last step run at each rate before the next decay (20,000, 28,000, 36,000 above)."""
        return tuple(round(m * steps) for m in self.milestones)

    def multiplier(self, step: int, steps: int) -> float:
        """The factor on the base rate for (1-based) ``step`` of a ``steps``-step run."""
        passed = sum(step > boundary for boundary in self.milestone_steps(steps))
        return self.factor**passed
