"""The simulated scheduler: GPU shares, multi-GPU pods, model constraints, order."""

from __future__ import annotations

from burstd.sim.cluster import Scheduler, SimNode, SimPod


def pod(
    seq: int, gpus: int = 0, milli: int = 0, models: frozenset[str] = frozenset(), prio: int = 0
) -> SimPod:
    return SimPod(seq, float(seq), 100.0, gpus, milli, models, prio, seq)


def cluster(*nodes: tuple[str, int, str]) -> Scheduler:
    s = Scheduler()
    for name, gpus, model in nodes:
        s.home.add(SimNode(name, gpus, model))
    return s


def test_fractional_pods_share_one_gpu():
    s = cluster(("n0", 2, "T4"))
    a, b, c = pod(1, milli=500), pod(2, milli=300), pod(3, milli=200)
    for p in (a, b, c):
        assert s.place(p) is not None
    assert a.gpu_slots == b.gpu_slots == c.gpu_slots
    node = s.home.nodes["n0"]
    assert sorted(node.free) == [0, 1000]
    # A fourth share no longer fits on that GPU and takes the free one.
    d = pod(4, milli=600)
    assert s.place(d) is not None
    assert d.gpu_slots != a.gpu_slots
    assert s.place(pod(5, gpus=1)) is None


def test_best_fit_share_goes_to_fullest_gpu():
    s = cluster(("n0", 1, "T4"), ("n1", 1, "T4"))
    first, second = pod(1, milli=700), pod(2, milli=200)
    s.place(first)
    s.place(second)
    assert first.node is second.node  # 300 left on n0's GPU beats a fresh GPU
    third = pod(3, milli=400)
    s.place(third)
    assert third.node is not first.node


def test_multi_gpu_pod_needs_one_node():
    s = cluster(("a", 4, "V100"), ("b", 4, "V100"))
    s.place(pod(1, gpus=2))  # best fit: fills part of one node
    big = pod(2, gpus=4)
    node = s.place(big)
    assert node is not None
    assert len(big.gpu_slots) == 4
    # 2 GPUs left, split nowhere else: a 4-GPU pod cannot be assembled from two nodes.
    s.place(pod(3, gpus=1))
    s.place(pod(4, gpus=1))
    assert s.place(pod(5, gpus=4)) is None
    assert s.place(pod(6, gpus=2)) is None


def test_whole_gpu_best_fit_keeps_big_nodes_whole():
    s = cluster(("big", 8, "G2"), ("small", 2, "G2"))
    p = pod(1, gpus=1)
    assert s.place(p) is s.home.nodes["small"]
    assert s.place(pod(2, gpus=8)) is s.home.nodes["big"]


def test_model_constraints():
    s = cluster(("t4", 2, "T4"), ("v100", 2, "V100M32"))
    p = pod(1, gpus=2, models=frozenset({"V100M16", "V100M32"}))
    assert s.place(p) is s.home.nodes["v100"]
    assert s.place(pod(2, gpus=1, models=frozenset({"A100"}))) is None
    q = pod(3, milli=500, models=frozenset({"T4"}))
    assert s.place(q) is s.home.nodes["t4"]


def test_release_frees_gpus_and_index():
    s = cluster(("n", 2, "T4"))
    a, b = pod(1, milli=400), pod(2, gpus=1)
    s.place(a)
    s.place(b)
    assert s.place(pod(3, gpus=1)) is None
    s.release(b)
    assert s.place(pod(4, gpus=1)) is not None
    s.release(a)
    assert s.home.nodes["n"].free.count(1000) == 1


def test_round_priority_then_fifo_without_head_of_line_blocking():
    s = cluster(("n", 4, "G2"))
    blocker = pod(0, gpus=4)
    s.place(blocker)
    waiting = [pod(1, gpus=4), pod(2, gpus=1), pod(3, gpus=2, prio=10), pod(4, gpus=1)]
    for p in waiting:
        s.enqueue(p)
    s.release(blocker)
    bound = [p.index for p, _ in s.round()]
    # The high-priority pod first; the 4-GPU pod no longer fits, the small ones pass it.
    assert bound == [3, 2, 4]
    assert s.pending == 1


def test_cordoned_node_takes_no_pods():
    s = Scheduler()
    node = SimNode("vk", 2, "A", unit="u1")
    s.borrowed.add(node)
    s.borrowed.cordon(node, True)
    assert s.place(pod(1, gpus=1)) is None
    s.borrowed.cordon(node, False)
    assert s.place(pod(2, gpus=1)) is node


def test_home_nodes_before_borrowed():
    s = cluster(("home", 8, "G2"))
    s.borrowed.add(SimNode("vk", 1, "G2", unit="u1"))
    assert s.place(pod(1, gpus=1)) is s.home.nodes["home"]
