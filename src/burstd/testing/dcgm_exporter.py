"""A test exporter that replays real per-pod GPU duty cycles as DCGM exporter series.

The NVIDIA DCGM exporter cannot run without a GPU, so tests and benchmarks scrape this
instead: it serves, on ``/metrics`` in the Prometheus text format, the series a DCGM exporter
with its Kubernetes pod mapping would (``DCGM_FI_DEV_GPU_UTIL`` in percent and
``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` as a ratio, labelled ``gpu``, ``UUID``, ``modelName``,
``Hostname``, ``namespace``, ``pod``, ``container``), with the values of the bundled Alibaba
GenAI duty-cycle sample (``burstd/data/traces/alibaba-genai``).

Time is compressed: one trace sample (57 s apart in the trace) lasts ``seconds_per_step`` real
seconds. ``seek`` jumps to a trace sample, so a test can replay the stretch it needs (a
sustained rush, a quiet hour) without waiting for it. A pod with no sample at the current step
has no series then, as a real exporter's pod that is gone. Two pods share a node (``Hostname``
``gpu-node-<pod index // 2>``).

Run it by hand with ``python -m burstd.testing.dcgm_exporter --port 9400``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from burstd.sim.duty import DutyCycle, load_duty_cycle

NAMESPACE = "llm-serving"
MODEL = "NVIDIA A100-SXM4-80GB"


class ReplayExporter:
    """Replays ``trace`` from ``start_step``, one step every ``seconds_per_step`` seconds."""

    def __init__(
        self,
        trace: DutyCycle,
        *,
        seconds_per_step: float = 1.0,
        start_step: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trace = trace
        self.seconds_per_step = seconds_per_step
        self._clock = clock
        self._origin = clock()
        self._start = start_step
        self.scrapes = 0

    def seek(self, step: int) -> None:
        """Replay from trace sample ``step`` on, starting now."""
        self._origin = self._clock()
        self._start = step

    @property
    def step(self) -> int:
        """The trace sample served now (the trace wraps around at its end)."""
        elapsed = int((self._clock() - self._origin) / self.seconds_per_step)
        return (self._start + elapsed) % max(1, self.trace.steps)

    def values(self) -> dict[str, float]:
        """Each pod's utilization now (pods without a sample left out)."""
        step = self.step
        out = {}
        for pod in self.trace.values:
            v = self.trace.at(pod, step)
            if v is not None:
                out[pod] = v
        return out

    def render(self) -> str:
        """The ``/metrics`` page."""
        util = ["# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
                "# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]  # fmt: skip
        active = [
            "# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.",
            "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge",
        ]
        for pod, value in self.values().items():
            i = int(pod.rsplit("-", 1)[1])
            labels = (
                f'gpu="{i % 2}",UUID="GPU-{i:08x}-burstd-replay",device="nvidia{i % 2}",'
                f'modelName="{MODEL}",Hostname="gpu-node-{i // 2}",'
                f'container="vllm",namespace="{NAMESPACE}",pod="{pod}"'
            )
            util.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {value:g}")
            active.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} {value / 100:g}")
        return "\n".join([*util, *active, ""])

    async def _metrics(self, request: web.Request) -> web.Response:
        self.scrapes += 1
        return web.Response(text=self.render(), content_type="text/plain")

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve ``/metrics`` on ``host:port`` (0: a free port); yields ``host:port``."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        try:
            yield f"{host}:{bound}"
        finally:
            await runner.cleanup()


async def _main(port: int, seconds_per_step: float, start: int) -> None:
    exporter = ReplayExporter(
        load_duty_cycle(), seconds_per_step=seconds_per_step, start_step=start
    )
    async with exporter.serve(port=port) as where:
        print(f"serving DCGM-named series on http://{where}/metrics", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--seconds-per-step", type=float, default=1.0)
    parser.add_argument("--start", type=int, default=0, help="trace sample to start from")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port, args.seconds_per_step, args.start))


if __name__ == "__main__":
    main()
