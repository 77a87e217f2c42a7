"""Rate limits (CONTRACT 5) measured at a real subscriber: one gateway on SQLite, and two
replicas sharing one bucket on PostgreSQL. Bounds are upper bounds over a window that began
with the load (a slow machine only lowers the count); the events all arrive in the end."""

from __future__ import annotations

import asyncio
import time

from tests.integration.conftest import FAST_RETRY, Running, Start
from tests.integration.events import order, structured
from tests.unit.test_store_contract import postgres_schema


def sub(name: str, rate: str) -> dict[str, object]:
    return {
        "name": name,
        "sink": f"{{sink}}/{name}",
        "delivery": {"timeout": "1s", "retry": dict(FAST_RETRY), "rate_limit": rate},
    }


async def post(gws: list[Running], count: int) -> None:
    for i in range(count):
        assert (await gws[i % len(gws)].post(**structured(order()))).status == 202


def arrivals_within(times: list[float], start: float, window: float) -> int:
    return sum(1 for t in times if t - start <= window)


async def test_a_rate_limit_holds_at_the_sink(start: Start) -> None:
    gw = await start([sub("limited", "10/s"), {"name": "free", "sink": "{sink}/free"}])
    began = time.monotonic()
    await post([gw], 40)
    await gw.subscriber.wait_for("/free", 40)  # the unlimited neighbour is not held back
    got = await gw.subscriber.wait_for("/limited", 40, timeout=30)
    times = [r.at for r in got]
    # A full bucket (10) at first, then 10 a second: within 1 s of the start at most 20.
    assert arrivals_within(times, began, 1.0) <= 20
    assert arrivals_within(times, began, 2.0) <= 30
    for _ in range(100):  # the last outcome is recorded after its arrival
        if await gw.gateway.store.pending() == 0:
            break
        await asyncio.sleep(0.05)
    assert await gw.gateway.store.pending() == 0


async def test_per_minute_rates(start: Start) -> None:
    gw = await start([sub("slow", "60/m")])
    began = time.monotonic()
    await post([gw], 5)
    await gw.subscriber.wait_for("/slow", 2, timeout=10)  # 1 at first, 1 a second
    await asyncio.sleep(0.2)
    assert arrivals_within([r.at for r in gw.subscriber.at("/slow")], began, 1.0) <= 2


async def test_replicas_share_one_bucket_on_postgresql(start: Start) -> None:
    spec = sub("limited", "10/s")
    async with postgres_schema(pool_max=4) as url:
        one = await start([spec], gateway={"store": url})
        two = await start([spec], gateway={"store": url})
        began = time.monotonic()
        await post([one, two], 40)
        got = await one.subscriber.wait_for("/limited", 40, timeout=30)
        times = [r.at for r in got]
        # Two replicas, one bucket: as for one (plus what each may hold unspent: 1 token).
        assert arrivals_within(times, began, 1.0) <= 22
        assert arrivals_within(times, began, 2.0) <= 32
        await one.client.close()
        await two.client.close()
