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
from burstd.sim.trace import MAX_PODS, MAX_SECONDS, Profile, Trace, TraceError

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
# What each parameter may be, at most: enough for any study, and small enough that a trace
# fits in memory (a pod costs about 100 bytes) and every number stays finite.
_MAXIMA: dict[str, float] = {
    "pods": MAX_PODS,
    "load": 1000.0,
    "median": 365 * 86_400.0,
    "sigma": 5.0,
    "peak": 24.0,
    "seed": 2**63 - 1,
    "gpus": 10_000_000,
}


def is_synthetic(text: str | None) -> bool:
    return text is not None and (text == PREFIX or text.startswith(PREFIX + ":"))


def parse_synthetic(text: str) -> SyntheticSpec:
    """Read ``synthetic:key=value,...``; errors name the column of the bad parameter."""
    body = text[len(PREFIX) + 1 :] if text.startswith(PREFIX + ":") else ""
    known = {f.name for f in fields(SyntheticSpec)}
    values: dict[str, Any] = {}
    column = len(PREFIX) + 2
    # The spec names itself in messages, cut short: a parameter can be thousands of digits.
    name = text if len(text) <= 80 else text[:77] + "..."
    for part in body.split(",") if body else []:
        key, eq, raw = part.partition("=")
        key = key.strip()
        where = f"{name}:1:{column}"
        column += len(part) + 1
        if not eq:
            raise TraceError(f"{where}: expected key=value, got {part!r}")
        if key not in known:
            raise TraceError(
                f"{where}: unknown parameter {key!r} (known: {', '.join(sorted(known))})"
            )
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        if key in _INTS and not (raw.strip().isdigit() and len(raw.strip()) <= 30):
            raise TraceError(
                f"{where}: {key}: expected a whole number from 0 to {_MAXIMA[key]:g}, got {shown!r}"
            )
        try:
            if key in _DURATIONS:
                value: float | int = parse_duration(raw)
            elif key in _INTS:
                value = int(raw)
            else:
                value = float(raw)
        except ValueError as e:
            # Python's own words ("could not convert string to float") are not the user's.
            message = str(e) if key in _DURATIONS else f"expected a number, got {shown!r}"
            raise TraceError(f"{where}: {key}: {message}") from None
        # Comparisons that NaN fails: a NaN or infinite rate would never end the draw.
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if key in _FRACTIONS and not 0 <= number <= 1:
            raise TraceError(f"{where}: {key}: expected a fraction 0..1, got {shown}")
        top = _MAXIMA.get(key)
        if key in ("pods", "load", "median", "sigma") and not 0 < number <= (top or 0):
            raise TraceError(
                f"{where}: {key}: expected a number above 0, at most {top:g}, got {raw}"
            )
        if key in ("seed", "gpus", "peak") and not 0 <= number <= (top or 0):
            raise TraceError(f"{where}: {key}: expected 0 to {top:g}, got {shown}")
        values[key] = value
    spec = SyntheticSpec(**values)
    if spec.share + spec.multi > 1:
        raise TraceError(f"{name}:1:1: share + multi must be at most 1")
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
    if not (math.isfinite(rate) and rate > 0 and spec.pods / rate <= MAX_SECONDS):
        raise TraceError(
            f"{spec.text()}:1:1: these parameters spread {spec.pods} pods over more than "
            f"{MAX_SECONDS:g} seconds; raise load or gpus"
        )
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
