"""The bundled GPU duty-cycle sample (Alibaba GenAI trace, 8 inference pods over a day) as a
step series: replayed by the DCGM exporter stand-in for the daemon's tests, and read by the
simulator's utilization triggers (``burstd simulate --utilization duty-cycle``).

See ``burstd/data/traces/alibaba-genai/README.md`` for what was kept and why.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

TRACE = "traces/alibaba-genai/duty_cycle_sample.csv.gz"


@dataclass(frozen=True, slots=True, kw_only=True)
class DutyCycle:
    """Per-pod utilization on a common step grid: ``values[pod][step]`` (``None``: no sample)."""

    step_s: float
    values: Mapping[str, tuple[float | None, ...]]

    @property
    def steps(self) -> int:
        return max((len(v) for v in self.values.values()), default=0)

    def at(self, pod: str, step: int) -> float | None:
        series = self.values[pod]
        return series[step] if 0 <= step < len(series) else None

    def mean(self) -> tuple[float, ...]:
        """The pods' average at each step (0 where no pod has a sample)."""
        out = []
        for step in range(self.steps):
            values = [v for v in (self.at(p, step) for p in self.values) if v is not None]
            out.append(statistics.fmean(values) if values else 0.0)
        return tuple(out)


def load_duty_cycle() -> DutyCycle:
    """The bundled sample (see its README for what was kept and why)."""
    ref = resources.files("burstd.data").joinpath(TRACE)
    with ref.open("rb") as raw, gzip.open(raw, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    times = sorted({float(r["timestamp_anon"]) for r in rows})
    index = {t: i for i, t in enumerate(times)}
    step = min((b - a for a, b in itertools.pairwise(times)), default=60.0)
    values: dict[str, list[float | None]] = {}
    for r in rows:
        series = values.setdefault(r["pod"], [None] * len(times))
        series[index[float(r["timestamp_anon"])]] = float(r["value"])
    pods = sorted(values, key=lambda p: int(p.rsplit("-", 1)[1]))
    return DutyCycle(step_s=step, values={p: tuple(values[p]) for p in pods})
