"""The circuit breaker (CONTRACT 5) with the real app and a real subscriber that is down on
command: it opens, probes, closes, dead-letters nothing, survives a restart, is shared by
replicas on PostgreSQL, and `circuit_breaker: off` leaves retries to walk to the dead letter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.integration.conftest import FAST_RETRY, Running, Start
from tests.integration.events import order, structured
from tests.unit.test_store_contract import postgres_schema

BREAKER = {"failures": 2, "cooldown": "300ms"}


def sub(name: str, breaker: object = BREAKER, **delivery: object) -> dict[str, object]:
    return {
        "name": name,
        "sink": f"{{sink}}/{name}",
        "delivery": {
            "timeout": "1s",
            "retry": dict(FAST_RETRY),  # 4 attempts, 20-100 ms apart: over in well under 1 s
            "dead_letter": "{sink}/dead",
            "circuit_breaker": breaker,
            **delivery,
        },
    }


async def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def post(gw: Running, count: int) -> list[str]:
    ids = [f"evt-{time.monotonic_ns()}-{i}" for i in range(count)]
    for event_id in ids:
        assert (await gw.post(**structured(order(event_id)))).status == 202
    return ids


async def test_opens_probes_closes_and_dead_letters_nothing(start: Start) -> None:
    gw = await start([sub("down"), sub("live")])
    gw.subscriber.plan("/down", 503)
    ids = await post(gw, 5)
    dispatcher = gw.gateway.dispatcher
    await eventually(lambda: dispatcher.breaker_open("down"), 5, "the breaker to open")
    assert not dispatcher.breaker_open("live")
    await gw.subscriber.wait_for("/live", 5)

    # Down for ~3 s: four attempts each would have dead-lettered every event by ~0.2 s.
    await asyncio.sleep(3)
    tried = len(gw.subscriber.at("/down"))
    # 2 failures opened it; then probes after 0.3, 0.6, 1.2 s cooldowns (doubling): a handful
    # (how many depends on the machine's speed), far fewer than 5 events x 4 attempts.
    assert 2 <= tried < 5 * 4, tried
    assert await gw.gateway.store.dead_letters(None, 100) == []
    assert gw.subscriber.at("/dead") == []
    assert dispatcher.breaker_open("down")
    assert await gw.gateway.store.pending() == 5  # kept

    failed = len(gw.subscriber.at("/down"))  # every request from here on is answered 200
    gw.subscriber.plan("/down", 200)
    await eventually(lambda: not dispatcher.breaker_open("down"), 10, "the breaker to close")
    await gw.subscriber.until(
        lambda: {r.headers.get("ce-id") for r in gw.subscriber.at("/down")[failed:]} >= set(ids),
        10, "every held event delivered",
    )  # fmt: skip
    deadline = time.monotonic() + 5  # the last answers are being recorded
    while await gw.gateway.store.pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert await gw.gateway.store.pending() == 0
    assert await gw.gateway.store.dead_letters(None, 100) == []
    metrics = await (await gw.client.get("/metrics")).text()
    assert 'gateway_breaker_transitions_total{state="open",subscription="down"}' in metrics
    assert 'gateway_breaker_transitions_total{state="closed",subscription="down"}' in metrics


async def test_off_lets_retries_walk_to_the_dead_letter(start: Start) -> None:
    gw = await start([sub("down", breaker=False)])
    gw.subscriber.plan("/down", 503)
    await post(gw, 3)
    await gw.subscriber.wait_for("/dead", 3)
    assert len(gw.subscriber.at("/down")) == 3 * 4
    assert not gw.gateway.dispatcher.breaker_open("down")
    assert len(await gw.gateway.store.dead_letters("down", 10)) == 3


async def test_an_open_breaker_survives_a_restart(start: Start) -> None:
    spec = sub("down", breaker={"failures": 2, "cooldown": "1h"})
    gw = await start([spec])
    gw.subscriber.plan("/down", 503)
    await post(gw, 3)
    await eventually(lambda: gw.gateway.dispatcher.breaker_open("down"), 5, "the breaker")
    await gw.client.close()
    tried = len(gw.subscriber.at("/down"))

    again = await start([spec])
    assert again.gateway.dispatcher.breaker_open("down")
    gw.subscriber.plan("/down", 200)
    await asyncio.sleep(0.5)  # several polls: the hour-long cooldown holds every attempt
    assert len(gw.subscriber.at("/down")) == tried
    assert await again.gateway.store.pending() == 3


async def test_replicas_share_the_breaker_on_postgresql(start: Start) -> None:
    spec = sub("down", breaker={"failures": 2, "cooldown": "1h"})
    async with postgres_schema(pool_max=4) as url:
        one = await start([spec], gateway={"store": url})
        two = await start([spec], gateway={"store": url})
        one.subscriber.plan("/down", 503)
        await post(one, 4)
        both = (one.gateway.dispatcher, two.gateway.dispatcher)
        await eventually(lambda: all(d.breaker_open("down") for d in both), 5, "both replicas")
        # attempts started before a replica learnt of the breaker may still be on their way
        await eventually(lambda: all(d.in_flight == 0 for d in both), 5, "attempts done")
        tried = len(one.subscriber.at("/down"))
        await asyncio.sleep(0.5)  # several polls of both replicas
        assert len(one.subscriber.at("/down")) == tried
        assert await one.gateway.store.dead_letters(None, 10) == []
        await one.client.close()
        await two.client.close()
