"""Adoption's per-target backoff: a target that cannot list its units is asked again later and
later, up to a cap, without holding the others up."""

from __future__ import annotations

from burstd.actuate.adoption import ADOPT_RETRY_MAX_S, Adoption


def test_the_wait_doubles_up_to_the_cap_and_a_list_ends_it() -> None:
    adoption = Adoption(base=2.0)
    delays = [adoption.failed("tf", "init failed", now=100.0).delay for _ in range(10)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]
    assert ADOPT_RETRY_MAX_S == 300.0
    assert adoption.next_try() == 400.0
    assert not adoption.due("tf", 399.0)
    assert adoption.due("tf", 400.0)
    assert not adoption.due("kw", 400.0)  # never failed: nothing to retry
    record = adoption.listed("tf")
    assert record is not None
    assert record.failures == 10
    assert adoption.next_try() is None
    assert adoption.listed("tf") is None


def test_each_target_backs_off_on_its_own_and_a_reload_asks_them_all_again() -> None:
    adoption = Adoption(base=1.0)
    adoption.failed("a", "e", now=0.0)
    adoption.failed("a", "e", now=1.0)
    adoption.failed("b", "e", now=1.0)
    assert (adoption.unlisted["a"].retry_at, adoption.unlisted["b"].retry_at) == (3.0, 2.0)
    adoption.retry_now()
    assert adoption.due("a", 1.0)
    assert adoption.due("b", 1.0)
    assert adoption.failed("a", "e", now=1.0).delay == 4.0  # the backoff goes on
