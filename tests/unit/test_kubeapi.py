"""The one request helper every Kubernetes caller shares (``burstd.kubeapi``) and the providers'
flavour of it (``providers.kube``), against stand-ins for a generated API function: what each
answer and each failure becomes."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from burstd import kubeapi
from burstd.model import CORDONED_ANNOTATION
from burstd.providers import kube
from burstd.providers.base import ProviderError
from burstd.sources.kube import objects


class Response:
    """What a generated function returns with ``_preload_content=False``."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self.released = False

    async def read(self) -> bytes:
        return self.body

    def release(self) -> None:
        self.released = True


class Api:
    """A generated function answering ``response`` (or raising ``error``), recording calls."""

    def __init__(self, response: Response | None = None, error: Exception | None = None) -> None:
        self.response = response
        self.error = error
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def __call__(self, *args: Any, **kw: Any) -> Response:
        self.calls.append((args, kw))
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def answering(status: int, body: bytes) -> Api:
    return Api(Response(status, body))


async def test_a_body_is_returned_as_json_and_the_response_released() -> None:
    api = answering(200, b'{"metadata": {"name": "n1"}}')
    assert await kube.call(api, "n1", label_selector="a=b") == {"metadata": {"name": "n1"}}
    args, kw = api.calls[0]
    assert args == ("n1",)
    assert kw == {"label_selector": "a=b", "_preload_content": False, "_request_timeout": 30.0}
    assert api.response is not None
    assert api.response.released


async def test_no_body_or_not_json_is_an_empty_answer() -> None:
    assert await kube.call(answering(200, b"")) == {}
    assert await kube.call(answering(200, b"<html>proxy</html>")) == {}


async def test_an_error_status_carries_the_servers_message_and_retryability() -> None:
    with pytest.raises(kube.ApiError) as refused:
        await kube.call(answering(403, b'{"message": "nodes is forbidden"}'))
    assert str(refused.value) == "HTTP 403: nodes is forbidden"
    assert refused.value.status == 403
    assert not refused.value.retryable
    for status in (409, 429, 500, 503):
        with pytest.raises(kube.ApiError) as e:
            await kube.call(answering(status, b"{}"))
        assert e.value.retryable, status


async def test_an_error_page_that_is_not_json_is_quoted_from_its_start() -> None:
    with pytest.raises(kube.ApiError) as e:
        await kube.call(answering(502, b"Bad Gateway" + b"x" * 500))
    assert e.value.status == 502
    assert str(e.value).startswith("HTTP 502: b'Bad Gatewayxxx")
    assert len(str(e.value)) < 230


@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("refused"), TimeoutError(), OSError("no route to host")],
)
async def test_an_unreachable_server_is_a_retryable_provider_error(error: Exception) -> None:
    with pytest.raises(ProviderError) as e:
        await kube.call(Api(error=error))
    assert type(e.value) is ProviderError
    assert e.value.retryable
    assert str(e.value).startswith(f"cannot reach the API server: {type(error).__name__}")


async def test_maybe_and_gone_take_404_as_nothing_there() -> None:
    assert await kube.maybe(answering(404, b'{"message": "not found"}')) is None
    assert await kube.maybe(answering(200, b'{"a": 1}')) == {"a": 1}
    await kube.gone(answering(404, b"{}"))
    with pytest.raises(kube.ApiError):
        await kube.maybe(answering(500, b"{}"))
    with pytest.raises(kube.ApiError):
        await kube.gone(answering(409, b"{}"))


async def test_the_core_raises_the_errors_its_caller_names() -> None:
    class Refused(Exception):
        def __init__(self, status: int, message: str) -> None:
            super().__init__(status, message)

    with pytest.raises(Refused) as e:
        await kubeapi.request(
            answering(410, b'{"message": "too old"}'),
            request_timeout=1.0,
            refused=Refused,
            unreachable=RuntimeError,
        )
    assert e.value.args == (410, "too old")
    with pytest.raises(RuntimeError):
        await kubeapi.request(
            Api(error=OSError()), request_timeout=1.0, refused=Refused, unreachable=RuntimeError
        )


async def test_objects_keep_their_own_error_with_status_0_when_not_reached() -> None:
    with pytest.raises(objects.ApiError) as e:
        await objects.request(Api(error=aiohttp.ClientConnectionError("refused")))
    assert e.value.status == 0
    assert str(e.value).startswith("cannot reach the API server")
    with pytest.raises(objects.ApiError) as refused:
        await objects.request(answering(409, b'{"message": "conflict"}'))
    assert (refused.value.status, str(refused.value)) == (409, "HTTP 409: conflict")
    api = answering(200, b"[1, 2]")
    assert await objects.request(api) == {}
    assert api.calls[0][1]["_request_timeout"] == objects.REQUEST_TIMEOUT


class Core:
    """A ``CoreV1Api`` with the two functions the shared node operations call."""

    def __init__(self, status: int) -> None:
        self.patch_node = answering(status, b'{"metadata": {"name": "n1"}}')
        self.create_namespaced_pod_eviction = answering(status, b"{}")


async def test_cordon_sets_the_record_and_uncordon_removes_it_in_one_merge_patch() -> None:
    core = Core(200)
    assert await kube.set_unschedulable(core, "n1", True)
    assert await kube.set_unschedulable(core, "n1", False)
    (on_args, on_kw), (off_args, off_kw) = core.patch_node.calls
    assert on_args[0] == off_args[0] == "n1"
    assert on_args[1]["spec"] == {"unschedulable": True}
    stamp = on_args[1]["metadata"]["annotations"][CORDONED_ANNOTATION]
    assert kube.timestamp(stamp) > 0
    assert stamp.endswith("Z")
    assert off_args[1] == {
        "metadata": {"annotations": {CORDONED_ANNOTATION: None}},
        "spec": {"unschedulable": False},
    }
    assert on_kw["_content_type"] == off_kw["_content_type"] == kube.MERGE


async def test_a_gone_node_has_nothing_to_cordon(caplog: pytest.LogCaptureFixture) -> None:
    assert not await kube.set_unschedulable(Core(404), "n1", True)
    log = logging.getLogger("burstd.test")
    with caplog.at_level("WARNING", logger="burstd.test"):
        await kube.cordon_node(Core(404), "u1", "n1", False, log=log, event="x_node_gone")
    (record,) = caplog.records
    assert record.name == "burstd.test"
    assert record.getMessage() == "unit u1: node n1 is gone; nothing to uncordon"
    assert record.__dict__["event"] == "x_node_gone"
    with pytest.raises(kube.ApiError):
        await kube.cordon_node(Core(500), "u1", "n1", True, log=log, event="x_node_gone")


async def test_evict_posts_an_eviction_and_a_gone_pod_is_no_error() -> None:
    core = Core(201)
    await kube.evict(core, "ns1/p1")
    args, _ = core.create_namespaced_pod_eviction.calls[0]
    assert args[:2] == ("p1", "ns1")
    assert args[2]["kind"] == "Eviction"
    assert args[2]["metadata"] == {"name": "p1", "namespace": "ns1"}
    await kube.evict(Core(404), "ns1/p1")
    with pytest.raises(kube.ApiError) as e:
        await kube.evict(Core(429), "ns1/p1")
    assert e.value.retryable


def test_a_unit_needs_its_mig_slices_or_its_whole_gpus() -> None:
    assert kube.gpu_need(4, {}) == {"nvidia.com/gpu": 4}
    assert kube.gpu_need(4, {"1g.10gb": 7}) == {"nvidia.com/mig-1g.10gb": 7}
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"nvidia.com/mig-1g.10gb": "7", "nvidia.com/gpu": "0"},
        }
    }
    assert kube.node_ready(node, kube.gpu_need(4, {"1g.10gb": 7}))
    assert not kube.node_ready(node, kube.gpu_need(4, {}))
