"""GPU utilization and memory read from the local GPUs through NVML, for a single lab server.

When burstd runs on the GPU host itself (under systemd, no Prometheus), utilization triggers
can read NVML directly through nvidia-ml-py (``import pynvml``, the optional ``nvml`` extra).
Their queries name what to read instead of PromQL:

* ``nvml:gpu_util`` — percent of time a kernel ran, over the GPUs of the host;
* ``nvml:memory_used`` — percent of GPU memory in use, over the GPUs, or over the MIG
  instances of a GPU in MIG mode (NVML gives no utilization for a GPU in MIG mode, so such a
  GPU counts for memory only);

each optionally followed by ``:avg`` (the default), ``:max`` or ``:min`` across devices, e.g.
``nvml:gpu_util:max``.

Every loop interval the source reads the devices once and emits, per query, the samples of
its window (``MetricSamples``). Missing data is not low utilization: an NVML error, or no device
with the value, emits ``MetricMissing``; a query it does not know is missing with a reason
that says so. Without NVML (no ``pynvml`` module, no driver) the source says once, clearly,
that it is unavailable and marks its queries missing; it tries again at each interval, so a
driver loaded later is picked up. NVML calls take microseconds and run on the event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from burstd.model import Sample
from burstd.model.events import Event, MetricMissing, MetricSamples

log = logging.getLogger("burstd.sources.nvml")

PREFIX = "nvml:"
FIELDS = ("gpu_util", "memory_used")
AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "avg": statistics.fmean,
    "max": max,
    "min": min,
}


def is_nvml_query(query: str) -> bool:
    return query.startswith(PREFIX)


def parse_query(query: str) -> tuple[str, str]:
    """``nvml:<field>[:<aggregate>]`` → (field, aggregate); ``ValueError`` naming the parts."""
    parts = query[len(PREFIX) :].split(":")
    name, agg = parts[0], parts[1] if len(parts) > 1 else "avg"
    if len(parts) > 2 or name not in FIELDS or agg not in AGGREGATES:
        raise ValueError(
            f"unknown NVML query {query!r}: expected nvml:<{'|'.join(FIELDS)}>"
            f"[:{'|'.join(AGGREGATES)}]"
        )
    return name, agg


def _load() -> Any:
    return importlib.import_module("pynvml")


class NvmlSource:
    """Reads the local GPUs for the ``nvml:`` queries; ``run`` until cancelled.

    ``queries`` gives (query, window) pairs and ``interval`` the loop interval, both called at
    each read. ``load`` returns the ``pynvml`` module (tests pass a fake one).
    """

    name = "nvml"

    def __init__(
        self,
        queries: Callable[[], Sequence[tuple[str, float]]],
        interval: Callable[[], float],
        emit: Callable[[Event], None],
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        load: Callable[[], Any] = _load,
    ) -> None:
        self._queries = queries
        self._interval = interval
        self._emit = emit
        self._now = now
        self._sleep = sleep
        self._load = load
        self._nvml: Any = None
        self._said_unavailable = False
        self._samples: dict[str, list[Sample]] = {}
        self.unavailable: str | None = None
        """Why NVML cannot be used, while it cannot."""

    async def run(self) -> None:
        try:
            while True:
                self.read()
                await self._sleep(self._interval())
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception as e:  # NVMLError is the library's own class
                log.debug("nvmlShutdown failed: %s", e)
            self._nvml = None

    def _init(self) -> Any:
        if self._nvml is not None:
            return self._nvml
        try:
            nvml = self._load()
            nvml.nvmlInit()
        except Exception as e:  # ImportError, or the library's NVMLError (no driver)
            self.unavailable = f"{type(e).__name__}: {e}"
            if not self._said_unavailable:
                self._said_unavailable = True
                log.error(
                    "NVML is unavailable (%s); nvml: queries have no data until it is "
                    "(install the nvml extra, nvidia-ml-py, and the NVIDIA driver)",
                    self.unavailable,
                    extra={"event": "nvml_unavailable", "reason": self.unavailable},
                )
            return None
        if self._said_unavailable:
            log.info("NVML is available now", extra={"event": "nvml_available"})
        self._said_unavailable = False
        self.unavailable = None
        self._nvml = nvml
        return nvml

    def read(self) -> None:
        """Read the devices once and emit each query's samples (or why there are none)."""
        wanted: dict[str, float] = {}
        for query, window in self._queries():
            if is_nvml_query(query):
                wanted[query] = max(window, wanted.get(query, 0.0))
        if not wanted:
            return
        now = self._now()
        nvml = self._init()
        if nvml is None:
            for query in wanted:
                self._missing(query, now, f"NVML unavailable: {self.unavailable}")
            return
        try:
            values = self._devices(nvml)
        except Exception as e:  # NVMLError: driver gone, GPU fell off the bus...
            self._shutdown()
            for query in wanted:
                self._missing(query, now, f"NVML error: {e}")
            return
        for query, window in wanted.items():
            try:
                name, agg = parse_query(query)
            except ValueError as e:
                self._missing(query, now, str(e))
                continue
            if not values[name]:
                self._missing(query, now, f"no device reports {name}")
                continue
            kept = [s for s in self._samples.get(query, []) if s.at >= now - window - 1e-9]
            kept.append(Sample(at=now, value=AGGREGATES[agg](values[name])))
            self._samples[query] = kept
            self._emit(MetricSamples(query=query, samples=tuple(kept), at=now))

    def _missing(self, query: str, now: float, reason: str) -> None:
        self._samples.pop(query, None)
        self._emit(MetricMissing(query=query, at=now, reason=reason))

    @staticmethod
    def _devices(nvml: Any) -> dict[str, list[float]]:
        util: list[float] = []
        memory: list[float] = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            if _mig_enabled(nvml, handle):
                for j in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
                    try:
                        mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
                    except nvml.NVMLError:
                        continue  # no instance in this slot
                    memory.append(_memory_pct(nvml, mig))
                continue
            util.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            memory.append(_memory_pct(nvml, handle))
        return {"gpu_util": util, "memory_used": memory}


def _mig_enabled(nvml: Any, handle: Any) -> bool:
    try:
        current, _ = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:
        return False  # not a MIG-capable GPU
    return bool(current == nvml.NVML_DEVICE_MIG_ENABLE)


def _memory_pct(nvml: Any, handle: Any) -> float:
    info = nvml.nvmlDeviceGetMemoryInfo(handle)
    return 100.0 * float(info.used) / float(info.total) if info.total else 0.0
