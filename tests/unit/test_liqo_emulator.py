"""The Liqo emulator's own arithmetic and switches (its behaviour against real API servers is
what tests/integration/test_liqo.py checks)."""

from __future__ import annotations

from typing import Any

from burstd.testing.liqo import ORIGIN_LABEL, Faults, free_gpus


def node(name: str, gpus: int, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(gpus: int, *, node: str | None = "n0", phase: str = "Running", reflected: bool = False):
    labels = {ORIGIN_LABEL: "consumer"} if reflected else {}
    return {
        "metadata": {"name": "p", "labels": labels},
        "spec": {
            "nodeName": node,
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": gpus}}}],
        },
        "status": {"phase": phase},
    }


def rs(granted: int, verdict: str = "Accepted") -> dict[str, Any]:
    return {
        "status": {
            "conditions": [{"type": "Resources", "status": verdict}],
            "resources": {"nvidia.com/gpu": str(granted)},
        }
    }


def test_free_gpus_are_the_donors_real_ones_less_its_work_and_earlier_grants() -> None:
    nodes = [node("n0", 4), node("n1", 4), node("n2", 8, ready=False)]
    pods = [
        pod(2),  # the donor's own running work
        pod(1, node=None),  # pending: holds no GPU yet
        pod(1, phase="Succeeded"),  # finished
        pod(4, reflected=True),  # a reflection: counted in its slice's grant
    ]
    slices = [rs(4), rs(4, verdict="Denied")]
    assert free_gpus(nodes, pods, slices) == 8 - 2 - 4


def test_faults_are_read_from_the_configmap_data() -> None:
    assert Faults.parse({}) == Faults()
    faults = Faults.parse({"deny": "true", "accept_delay": "2.5", "leave_node": "yes"})
    assert faults == Faults(deny=True, accept_delay=2.5, leave_node=True)
    assert Faults.parse({"accept_delay": "soon"}).accept_delay == 0.0
