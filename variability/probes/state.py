"""The mergeable state of a probe: every site's sufficient statistics, in depth order.

Results from chunks of a probe set, or from the ranks of a distributed job, are merged here, and
they equal one pass over all the data up to floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from variability.probes.errors import ProbeError
from variability.probes.results import ProbeResults, UnprobedCall, summarise_sites
from variability.probes.statistics import SiteStatistics
from variability.probes.thresholds import Thresholds

OUTPUT = "output"


@dataclass
class SiteRecord:
    """A site's statistics, with what the results name it by: ``layer`` (its type) and
    ``shape`` (one sample's shape at the site, as first seen)."""

    name: str
    kind: str
    source: str
    stats: SiteStatistics
    layer: str = ""
    shape: tuple[int, ...] | None = None


@dataclass
class ProbeState:
    """Sufficient statistics of every site seen (ordered by depth) and of the model's output."""

    records: list[SiteRecord] = field(default_factory=list)
    output: SiteRecord | None = None
    samples: int = 0
    unused_sites: tuple[str, ...] = ()
    unprobed_calls: dict[UnprobedCall, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return [r.name for r in self.records]

    def merged(self, other: ProbeState) -> ProbeState:
        """The state of both probe sets together (sites matched by name)."""
        mine = {r.name: r for r in self.records}
        theirs = {r.name: r for r in other.records}
        order = self.names() + [n for n in other.names() if n not in mine]
        records = []
        for name in order:
            a, b = mine.get(name), theirs.get(name)
            if a is not None and b is not None:
                records.append(replace(a, stats=a.stats.merged(b.stats)))
            else:
                r = a if a is not None else b
                assert r is not None  # the name comes from one of the two
                records.append(replace(r, stats=r.stats.copy()))
        output = self.output or other.output
        if self.output is not None and other.output is not None:
            output = replace(self.output, stats=self.output.stats.merged(other.output.stats))
        unused = tuple(n for n in self.unused_sites if n in other.unused_sites)
        unprobed = dict(self.unprobed_calls)
        for call, count in other.unprobed_calls.items():
            unprobed[call] = unprobed.get(call, 0) + count
        notes = self.notes + tuple(n for n in other.notes if n not in self.notes)
        return ProbeState(records, output, self.samples + other.samples, unused, unprobed, notes)

    def results(self, thresholds: Thresholds | None = None) -> ProbeResults:
        thresholds = thresholds or Thresholds()
        sources = [
            (r.name, r.kind, r.source, depth, r.stats) for depth, r in enumerate(self.records)
        ]
        if self.output is not None:
            sources.append((OUTPUT, OUTPUT, OUTPUT, len(self.records), self.output.stats))
        summaries = [
            replace(summary, layer=record.layer, shape=record.shape)
            for summary, record in zip(
                summarise_sites(sources, thresholds), self._all_records(), strict=True
            )
        ]
        output = summaries.pop() if self.output is not None else None
        return ProbeResults(
            tuple(summaries),
            output,
            thresholds,
            self.samples,
            self.unused_sites,
            dict(self.unprobed_calls),
            self.notes,
        )

    # --- torch.distributed ---------------------------------------------------------------------

    def all_reduced(self, group: Any = None) -> ProbeState:
        """Every rank's statistics merged; each rank returns the same merged state.

        Rank 0's reference values are broadcast, every rank re-expresses its sums around them, and
        one all_reduce(SUM) of a single float64 vector adds them up.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        names = [r.name for r in self._all_records()]
        gathered: list[list[str] | None] = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, names, group=group)
        if any(g != names for g in gathered):
            raise ProbeError(
                "the ranks saw different probe sites; every rank must run the same model "
                f"on at least one batch (rank sites: {gathered})"
            )
        records = self._all_records()
        device = records[0].stats.count.device if records else torch.device("cpu")
        shifts = torch.cat([r.stats.shift for r in records]) if records else torch.zeros(0)
        dist.broadcast(shifts, src=0, group=group)
        rebased, offset = [], 0
        for record in records:
            reference = shifts[offset : offset + record.stats.units]
            offset += record.stats.units
            rebased.append(record.stats.rebased(reference))
        flat = torch.cat(
            [t.reshape(-1) for s in rebased for name, t in s.tensors() if name != "shift"]
            + [torch.tensor([float(self.samples)], dtype=torch.float64, device=device)]
        )
        dist.all_reduce(flat, group=group)
        position = 0
        for stats in rebased:
            for name, tensor in stats.tensors():
                if name == "shift":
                    continue
                size = tensor.numel()
                setattr(stats, name, flat[position : position + size].view_as(tensor).clone())
                position += size
            stats.initialised = bool(stats.count.sum() > 0)
        samples = int(flat[position].item())
        merged = [replace(r, stats=s) for r, s in zip(records, rebased, strict=True)]
        output = merged.pop() if self.output is not None else None
        return ProbeState(
            merged, output, samples, self.unused_sites, dict(self.unprobed_calls), self.notes
        )

    def _all_records(self) -> list[SiteRecord]:
        return [*self.records, *([self.output] if self.output is not None else [])]
