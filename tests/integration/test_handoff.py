"""Rows this process appends start at once, leased by the append (no lease query), while the
subscription has nothing older due; a subscription with older rows waiting leases them first,
so events still go out in arrival order."""

from __future__ import annotations

import asyncio

from gateway.config.model import Delivery, Subscription
from gateway.store.base import Kind, Leased
from gateway.store.memory import MemoryStore
from tests.integration.dispatching import dispatching
from tests.integration.subscriber import Subscriber
from tests.unit.test_store_contract import WINDOW, routed


class Counting(MemoryStore):
    """Counts the SINK rows handed out by `lease` (as opposed to taken at append)."""

    def __init__(self) -> None:
        super().__init__()
        self.leased: list[str] = []

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        rows = await super().lease(subscription, kind, limit, now, lease_for)
        if kind is Kind.SINK:
            self.leased.extend(row.event.id for row in rows)
        return rows


def one(sink: str) -> list[Subscription]:
    return [Subscription("s", sink, delivery=Delivery(timeout=5.0, max_in_flight=1))]


async def test_appended_rows_start_without_a_lease(subscriber: tuple[Subscriber, str]) -> None:
    received, base = subscriber
    store = Counting()
    await store.open()
    async with dispatching(store, one(f"{base}/s")):
        await asyncio.sleep(0.2)  # a first pass over the subscriptions: nothing is due
        for n in range(5):
            await store.append([routed(f"e{n}", "s")], 100.0 + n, WINDOW)
            await received.wait_for("/s", n + 1)
            for _ in range(100):  # the attempt's slot comes free once its outcome is recorded
                if await store.pending() == 0:
                    break
                await asyncio.sleep(0.01)
    assert [r.headers["ce-id"] for r in received.at("/s")] == [f"e{n}" for n in range(5)]
    assert store.leased == []
    assert await store.pending() == 0


async def test_older_rows_waiting_go_first(subscriber: tuple[Subscriber, str]) -> None:
    """Paused with three events waiting, then resumed, then a fourth event at once: the fourth
    must not start before the three (it would, if rows were taken whenever a slot is free)."""
    received, base = subscriber
    store = Counting()
    await store.open()
    async with dispatching(store, one(f"{base}/s")) as dispatcher:
        await asyncio.sleep(0.2)
        await dispatcher.pause("s")
        for n in range(1, 4):
            await store.append([routed(f"e{n}", "s")], 100.0 + n, WINDOW)
        await asyncio.sleep(0.2)  # held: nothing is sent
        assert received.at("/s") == []
        await dispatcher.resume("s")
        await store.append([routed("e4", "s")], 105.0, WINDOW)  # before the next pass
        await received.wait_for("/s", 4)
    assert [r.headers["ce-id"] for r in received.at("/s")] == ["e1", "e2", "e3", "e4"]
    assert store.leased == ["e1", "e2", "e3", "e4"]
