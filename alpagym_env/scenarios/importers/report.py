"""What a conversion produced, per source: the figures `python -m alpagym_env.scenarios.convert` prints.

A `SourceReport` collects, for one input (a file or a directory), the scenes converted and the files
skipped, agents by type, lanes and road edges, lane widths, log lengths, traffic lights, and every count
the importers put in their `notes` (what was fixed, defaulted or dropped).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from alpagym_env.scenarios.schema import AGENT_TYPE_NAMES, Scenario


@dataclass
class SourceReport:
    """Running totals of one conversion source."""

    source: str
    scenes: int = 0
    failed: int = 0
    agents: Counter = field(default_factory=Counter)
    lanes: int = 0
    edges: int = 0
    lights: int = 0
    scenes_with_lights: int = 0
    lane_widths: list[float] = field(default_factory=list)
    log_seconds: list[float] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def add(self, s: Scenario) -> None:
        """Counts one converted scene (its importer notes go straight into `notes`)."""
        self.scenes += 1
        for kind, count in zip(*np.unique(s.agent_type, return_counts=True), strict=True):
            name = AGENT_TYPE_NAMES[kind] if 0 <= kind < len(AGENT_TYPE_NAMES) else f"type {kind}"
            self.agents[name] += int(count)
        self.lanes += s.num_lanes
        self.edges += len(s.edge_offsets) - 1
        self.lights += s.num_lights
        self.scenes_with_lights += bool(s.num_lights)
        self.lane_widths += s.lane_width.tolist()
        self.log_seconds.append((s.num_steps - 1) * s.dt)

    def fail(self, error: Exception) -> None:
        """Counts one file that did not convert, by its message without the file name."""
        self.failed += 1
        self.errors[str(error).split(": ", 1)[-1]] += 1

    def lines(self) -> list[str]:
        """The report, one line a figure."""
        out = [f"{self.source}: {self.scenes} scenes converted, {self.failed} failed"]
        if self.scenes:
            agents = ", ".join(f"{n} {k}" for k, n in sorted(self.agents.items()))
            lo, med, hi = np.percentile(self.log_seconds, [0, 50, 100])
            width = f"{np.median(self.lane_widths):.2f} m" if self.lane_widths else "n/a"
            out += [
                f"  agents: {agents}",
                f"  map: {self.lanes} lanes (median width {width}), {self.edges} road edges",
                f"  log length: {lo:.1f} / {med:.1f} / {hi:.1f} s (min / median / max)",
                f"  traffic lights: {self.lights} in {self.scenes_with_lights} of {self.scenes} scenes",
            ]
        out += [f"  fixed or dropped: {n} x {what}" for what, n in sorted(self.notes.items())]
        out += [f"  failed: {n} x {what}" for what, n in sorted(self.errors.items())]
        return out
