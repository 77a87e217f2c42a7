"""Token buckets of rate limits (CONTRACT 5) with an explicit clock, and the dispatcher's
budgets taken from the store's bucket."""

from __future__ import annotations

import pytest

from gateway.config.model import Delivery, Subscription
from gateway.delivery.ratelimit import Rates, holding
from gateway.store.buckets import Bucket, capacity
from gateway.store.memory import MemoryStore


@pytest.mark.parametrize(("rate", "cap"), [(50.0, 50.0), (5.0, 5.0), (0.5, 1.0)])
def test_capacity_is_one_seconds_worth_at_least_one(rate: float, cap: float) -> None:
    assert capacity(rate) == cap


@pytest.mark.parametrize(
    ("takes", "granted"),
    [
        ([(10, 0.0)], [10]),  # full at first
        ([(10, 0.0), (10, 0.0)], [10, 0]),  # empty until it refills
        ([(10, 0.0), (10, 0.25)], [10, 2]),  # 10/s: 2.5 tokens after 250 ms, 2 whole
        ([(10, 0.0), (1, 0.25), (1, 0.3)], [10, 1, 1]),  # the half token is kept
        ([(10, 0.0), (100, 60.0)], [10, 10]),  # never more than the capacity
        ([(3, 0.0), (10, -5.0)], [3, 7]),  # a clock going back adds nothing
    ],
)
def test_bucket(takes: list[tuple[int, float]], granted: list[int]) -> None:
    bucket = Bucket(10.0, 0.0)
    assert [bucket.take(want, now) for want, now in takes] == granted


def test_bucket_wait() -> None:
    bucket = Bucket(4.0, 0.0)
    bucket.take(4, 0.0)
    assert bucket.wait(0.0) == 0.25
    assert bucket.wait(0.25) == 0.0


def limited(name: str, rate: float | None) -> Subscription:
    return Subscription(name, "http://127.0.0.1:1/", delivery=Delivery(rate_limit=rate))


async def test_rates_take_budgets_and_keep_what_was_not_spent() -> None:
    store = MemoryStore()
    await store.open()
    rates = Rates(store)
    rates.reconfigure([limited("a", 50.0), limited("free", None)])
    assert await rates.allow("free", 16, 0.0) == 16
    assert holding(50.0) == 5
    assert await rates.allow("a", 16, 0.0) == 5  # at most a budget at a time
    rates.unused("a", 3)  # leased 2 rows only
    assert await rates.allow("a", 3, 0.0) == 3  # from what it kept: the bucket is not touched
    got = [await rates.allow("a", 16, 0.0) for _ in range(20)]
    assert sum(got) == 50 - 5  # one second's worth in all, never more
    assert rates.waiting("a")
    assert rates.next_token(0.0) == pytest.approx(0.02)
    assert await rates.allow("a", 16, 0.1) == 5  # 5 tokens back after 100 ms
