"""The NVML source with a fake ``pynvml`` module: no GPU and no NVIDIA driver exist on these
machines, so the library is replaced by a small stand-in that answers the calls the source
makes (device count, utilization, memory, MIG mode and MIG devices) the way NVML does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from burstd.model.events import Event, MetricMissing, MetricSamples
from burstd.sources.nvml import NvmlSource, parse_query


class NVMLError(Exception):
    pass


@dataclass
class Gpu:
    util: int = 0
    used: int = 0
    total: int = 80
    mig: list[int] | None = None  # memory used per MIG instance (10 each)


def fake_pynvml(gpus: list[Gpu]) -> Any:
    """A module-like object with the pynvml functions the source uses."""

    def handle(i: int) -> Gpu:
        return gpus[i]

    def mig_mode(g: Any) -> tuple[int, int]:
        if isinstance(g, SimpleNamespace):
            raise NVMLError("Not Supported")
        return (1, 1) if g.mig is not None else (0, 0)

    def mig_device(g: Gpu, j: int) -> Any:
        assert g.mig is not None
        if j >= len(g.mig):
            raise NVMLError("Not Found")
        return SimpleNamespace(used=g.mig[j], total=10)

    def utilization(g: Gpu) -> Any:
        if g.mig is not None:
            raise NVMLError("Not Supported")
        return SimpleNamespace(gpu=g.util, memory=0)

    def memory(h: Any) -> Any:
        return SimpleNamespace(used=h.used, total=h.total, free=h.total - h.used)

    return SimpleNamespace(
        NVMLError=NVMLError,
        NVML_DEVICE_MIG_ENABLE=1,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetMigMode=mig_mode,
        nvmlDeviceGetMaxMigDeviceCount=lambda g: 7,
        nvmlDeviceGetMigDeviceHandleByIndex=mig_device,
        nvmlDeviceGetUtilizationRates=utilization,
        nvmlDeviceGetMemoryInfo=memory,
    )


class Clock:
    t = 100.0

    def now(self) -> float:
        return self.t


def make(queries: list[str], load: Any) -> tuple[NvmlSource, list[Event], Clock]:
    events: list[Event] = []
    clock = Clock()
    src = NvmlSource(
        lambda: [(q, 30.0) for q in queries], lambda: 10.0, events.append, now=clock.now, load=load
    )
    return src, events, clock


def test_utilization_and_memory_with_a_mig_gpu() -> None:
    gpus = [Gpu(util=90, used=40), Gpu(util=70, used=20), Gpu(mig=[5, 10])]
    src, events, clock = make(
        ["nvml:gpu_util", "nvml:gpu_util:max", "nvml:memory_used:max", "up{job='x'}"],
        lambda: fake_pynvml(gpus),
    )
    src.read()
    got = {e.query: e.samples[-1].value for e in events if isinstance(e, MetricSamples)}
    # The MIG GPU has no utilization; its two instances count for memory.
    assert got == {"nvml:gpu_util": 80.0, "nvml:gpu_util:max": 90.0, "nvml:memory_used:max": 100.0}
    clock.t += 10
    gpus[0].util = 100
    src.read()
    last = [e for e in events if isinstance(e, MetricSamples) and e.query == "nvml:gpu_util"][-1]
    assert [s.value for s in last.samples] == [80.0, 85.0]


def test_without_nvml_it_says_so_once_and_reports_missing_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_module() -> Any:
        raise ModuleNotFoundError("No module named 'pynvml'")

    src, events, clock = make(["nvml:gpu_util"], no_module)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        src.read()
        clock.t += 10
    unavailable = [r for r in caplog.records if getattr(r, "event", "") == "nvml_unavailable"]
    assert len(unavailable) == 1
    assert "No module named 'pynvml'" in unavailable[0].getMessage()
    assert all(isinstance(e, MetricMissing) for e in events)
    assert len(events) == 3
    assert src.unavailable is not None


def test_a_driver_error_is_missing_data_and_unknown_queries_say_why() -> None:
    nvml = fake_pynvml([Gpu(util=50)])

    def broken() -> int:
        raise NVMLError("GPU is lost")

    nvml.nvmlDeviceGetCount = broken
    src, events, _ = make(["nvml:gpu_util"], lambda: nvml)
    src.read()
    assert isinstance(events[-1], MetricMissing)
    assert "GPU is lost" in events[-1].reason
    with pytest.raises(ValueError, match=r"expected nvml:<gpu_util\|memory_used>"):
        parse_query("nvml:temperature")
