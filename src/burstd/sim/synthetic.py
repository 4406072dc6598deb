"""A synthetic workload for scale tests and for what-if studies beyond the real trace.

``synthetic:pods=1000000,load=1.2,seed=1`` describes a trace of ``pods`` GPU pods:

* arrivals are a Poisson process whose rate follows a daily cycle,
  ``rate(t) = mean_rate * (1 + daily * sin(2 pi (t/1d - (peak - 6h)/1d)))``, highest at ``peak``
  o'clock (from ``start_epoch``'s midnight), drawn by thinning;
* durations are log-normal with median ``median`` and shape ``sigma`` (heavy-tailed: with the
  default sigma 1.5 one pod in a hundred runs 30 times the median);
* requests are a mix: ``share`` of pods ask for a share of one GPU (250, 500 or 750 thousandths),
  ``multi`` ask for 2, 4 or 8 GPUs (in ratio 4:2:1) and the rest for one GPU;
* ``interactive`` of pods have QoS ``LS`` (latency-sensitive), the rest ``BE``;
* ``load`` sets the mean rate so that the GPUs asked for, on average, are ``load`` times the
  cluster's GPUs (``gpus``, by default the local cluster of the run): above 1 the cluster alone
  cannot keep up.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from burstd.model.durations import parse_duration
from burstd.sim.trace import Profile, Trace, TraceError

PREFIX = "synthetic"
_MULTI = np.array([2, 4, 8])
_MULTI_P = np.array([4, 2, 1]) / 7
_SHARES = np.array([250, 500, 750])


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticSpec:
    pods: int = 10_000
    load: float = 1.0
    seed: int = 0
    median: float = 1200.0
    sigma: float = 1.5
    daily: float = 0.5
    peak: float = 14.0
    share: float = 0.25
    multi: float = 0.1
    interactive: float = 0.5
    gpus: int = 0

    def text(self) -> str:
        def show(v: float) -> str:
            return str(v) if isinstance(v, int) else f"{v:g}"

        return (
            PREFIX + ":" + ",".join(f"{f.name}={show(getattr(self, f.name))}" for f in fields(self))
        )


_DURATIONS = {"median"}
_INTS = {"pods", "seed", "gpus"}
_FRACTIONS = {"daily", "share", "multi", "interactive"}


def is_synthetic(text: str | None) -> bool:
    return text is not None and (text == PREFIX or text.startswith(PREFIX + ":"))


def parse_synthetic(text: str) -> SyntheticSpec:
    """Read ``synthetic:key=value,...``; errors name the column of the bad parameter."""
    body = text[len(PREFIX) + 1 :] if text.startswith(PREFIX + ":") else ""
    known = {f.name for f in fields(SyntheticSpec)}
    values: dict[str, Any] = {}
    column = len(PREFIX) + 2
    for part in body.split(",") if body else []:
        key, eq, raw = part.partition("=")
        key = key.strip()
        where = f"{text}:1:{column}"
        column += len(part) + 1
        if not eq:
            raise TraceError(f"{where}: expected key=value, got {part!r}")
        if key not in known:
            raise TraceError(
                f"{where}: unknown parameter {key!r} (known: {', '.join(sorted(known))})"
            )
        try:
            if key in _DURATIONS:
                value: float | int = parse_duration(raw)
            elif key in _INTS:
                value = int(raw)
            else:
                value = float(raw)
        except ValueError as e:
            raise TraceError(f"{where}: {key}: {e}") from None
        if key in _FRACTIONS and not 0 <= float(value) <= 1:
            raise TraceError(f"{where}: {key}: expected a fraction 0..1, got {raw}")
        if key in ("pods", "load", "median", "sigma") and float(value) <= 0:
            raise TraceError(f"{where}: {key}: expected a positive number, got {raw}")
        if key in ("seed", "gpus") and int(value) < 0:
            raise TraceError(f"{where}: {key}: expected 0 or more, got {raw}")
        values[key] = value
    spec = SyntheticSpec(**values)
    if spec.share + spec.multi > 1:
        raise TraceError(f"{text}:1:1: share + multi must be at most 1")
    return spec


def mean_gpus_per_pod(spec: SyntheticSpec) -> float:
    multi = float((_MULTI * _MULTI_P).sum())
    share = float(_SHARES.mean()) / 1000
    return spec.share * share + spec.multi * multi + (1 - spec.share - spec.multi)


def generate(spec: SyntheticSpec, cluster_gpus: int) -> Trace:
    gpus = spec.gpus or cluster_gpus
    rng = np.random.default_rng(spec.seed)
    mean_duration = spec.median * math.exp(spec.sigma**2 / 2)
    rate = spec.load * gpus / (mean_gpus_per_pod(spec) * mean_duration)  # pods per second
    top = rate * (1 + spec.daily)
    phase = (spec.peak - 6.0) / 24.0
    chunks: list[np.ndarray] = []
    got = 0
    t0 = 0.0
    while got < spec.pods:
        n = max(1024, int((spec.pods - got) * (1 + spec.daily) * 1.1))
        t = t0 + np.cumsum(rng.exponential(1.0 / top, n))
        t0 = float(t[-1])
        level = 1 + spec.daily * np.sin(2 * np.pi * (t / 86_400.0 - phase))
        keep = t[rng.random(n) * (1 + spec.daily) < level]
        chunks.append(keep)
        got += keep.size
    submit = np.concatenate(chunks)[: spec.pods]
    n = submit.size
    duration = rng.lognormal(math.log(spec.median), spec.sigma, n)
    kind = rng.random(n)
    is_share = kind < spec.share
    is_multi = (kind >= spec.share) & (kind < spec.share + spec.multi)
    whole = np.where(is_multi, rng.choice(_MULTI, size=n, p=_MULTI_P), 1)
    whole = np.where(is_share, 0, whole)
    milli = np.where(is_share, rng.choice(_SHARES, size=n), 0)
    interactive = rng.random(n) < spec.interactive
    trace = Trace(
        source=spec.text(),
        submit=np.round(submit, 3).tolist(),
        duration=np.maximum(np.round(duration, 3), 1.0).tolist(),
        gpus=whole.astype(np.int64).tolist(),
        milli=milli.astype(np.int64).tolist(),
        profile=np.where(interactive, 0, 1).astype(np.int64).tolist(),
        profiles=[Profile(namespace=PREFIX, qos="LS"), Profile(namespace=PREFIX, qos="BE")],
        name_prefix="syn-",
    )
    trace.meta.update(
        {
            "trace": spec.text(),
            "format": "synthetic",
            "pods": n,
            "sized_for_gpus": gpus,
            "mean_rate_per_hour": round(rate * 3600, 3),
            "skipped": {},
            "bad_rows_skipped": 0,
        }
    )
    return trace
