"""``--sweep`` in parallel processes gives the rows the serial run gives, in the same order."""

from __future__ import annotations

from burstd.sim.parallel import run_sweep
from tests.sim.helpers import small_sweep


def test_parallel_sweep_equals_serial():
    setup, chosen = small_sweep()
    serial = run_sweep(setup, chosen, jobs=1)
    parallel = run_sweep(setup, chosen, jobs=2)
    assert parallel == serial
    assert [r["label"] for r in serial] == [v.label for v in chosen]
    assert len({r["burst_cost_usd"] for r in serial}) > 1  # the runs differ from each other
