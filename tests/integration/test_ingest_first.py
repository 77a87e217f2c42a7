"""Ingest first, end to end (`gateway.delivery.pressure`): while the event loop is CPU-bound and
the backlog grows, a real Dispatcher asks the store for at most `YIELD_STARTS` rows per lease and
hands off no appended row, yet delivers every event exactly once; once the pressure ends it
leases in full and hands rows off again; `gateway_delivery_yielded_seconds_total` counts the
time it yielded. Only the pressure's clock and the loop thread's CPU time are faked (the test
moves them on a window at a time, `Watch.tick`), and the rows started are hidden from it, so
that any arrival reads as a growing backlog (the rule itself is tested in
`tests/unit/test_pressure.py`); the store, the sender and the sink are real."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from gateway.config.model import Delivery, Subscription
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.pressure import WINDOW, YIELD_STARTS, Pressure
from gateway.ops.metrics import Metrics, standard
from gateway.store.base import Handoff, Kind, Leased, Store
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import SqliteStore
from tests.integration.dispatching import dispatching
from tests.integration.subscriber import Subscriber
from tests.unit.test_store_contract import WINDOW as DEDUPE_WINDOW
from tests.unit.test_store_contract import routed

YIELDED = "gateway_delivery_yielded_seconds_total"


class Watch:
    """Makes the dispatcher's `Pressure`, on a clock and a CPU time that only `tick` moves on,
    and records, with whether it yielded then, the `limit` of each SINK lease and whether each
    appended row was handed off."""

    def __init__(self) -> None:
        self.now = 0.0
        self.used = 0.0  # CPU seconds of the loop's thread
        self.pressure: Pressure | None = None
        self.leases: list[tuple[bool, int]] = []
        self.takes: list[tuple[bool, bool]] = []

    def tick(self, busy: bool = True) -> None:
        """A window passes, the loop's thread busy all of it or none; the dispatcher's next pass
        takes a reading."""
        self.now += WINDOW
        self.used += WINDOW if busy else 0.0

    def make(
        self,
        appended: Callable[[], int],
        started: Callable[[], int],
        yielded: Callable[[float], None],
    ) -> Pressure:
        """In place of `Pressure` in the dispatcher: its own `appended` and `yielded`; no row
        reads as started."""
        self.pressure = Pressure(
            appended, lambda: 0, yielded, clock=lambda: self.now, cpu=lambda: self.used
        )
        return self.pressure

    @property
    def yielding(self) -> bool:
        return self.pressure is not None and self.pressure.yielding

    def leased(self, kind: Kind, limit: int) -> None:
        if kind is Kind.SINK:
            self.leases.append((self.yielding, limit))

    def wrap(self, handoff: Handoff | None) -> Handoff | None:
        if handoff is None:
            return None
        take = handoff.take

        def watched(name: str, now: float) -> float | None:
            until = take(name, now)
            self.takes.append((self.yielding, until is not None))
            return until

        return Handoff(watched, handoff.taken, handoff.dropped)


class Watched:
    """Mixed into a store: the `limit` of its leases and its handoff's takes go to `watch`."""

    watch: Watch

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        self.watch.leased(kind, limit)
        leased: list[Leased] = await super().lease(  # type: ignore[misc]
            subscription, kind, limit, now, lease_for
        )
        return leased

    def hand_off(self, handoff: Handoff | None) -> None:
        super().hand_off(self.watch.wrap(handoff))  # type: ignore[misc]


class WatchedMemory(Watched, MemoryStore):
    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch


class WatchedSqlite(Watched, SqliteStore):
    def __init__(self, watch: Watch, path: str) -> None:
        super().__init__(path)
        self.watch = watch


@pytest.fixture(params=["memory", "sqlite"])
async def watched(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Store, Watch]]:
    watch = Watch()
    monkeypatch.setattr("gateway.delivery.dispatcher.Pressure", watch.make)
    store: Store
    if request.param == "memory":
        store = WatchedMemory(watch)
    else:
        store = WatchedSqlite(watch, str(tmp_path / "gateway.db"))
    await store.open()
    yield store, watch
    await store.close()


def running(store: Store, sink: str, metrics: Metrics) -> AbstractAsyncContextManager[Dispatcher]:
    """A real dispatcher with the gateway's metrics and one subscription "s"."""
    subscription = Subscription("s", sink, delivery=Delivery(timeout=5.0, max_in_flight=16))
    return dispatching(store, [subscription], metrics=metrics)


def yielded_seconds(metrics: Metrics) -> float:
    for line in metrics.render().splitlines():
        if line.startswith(f"{YIELDED} "):
            return float(line.split()[1])
    return 0.0


async def until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def arrive(store: Store, ids: list[str]) -> None:
    """Append events for "s" one at a time, a short pause apart, at the dispatcher's time (a
    row handed off is leased until a time reckoned from the append's)."""
    for ident in ids:
        await store.append([routed(ident, "s")], time.time(), DEDUPE_WINDOW)
        await asyncio.sleep(0.005)


async def pressed(store: Store, watch: Watch) -> None:
    """An event arrives in a window the loop's thread is busy all of: the dispatcher yields."""
    await until(lambda: bool(watch.leases), "the dispatcher's first pass")
    await arrive(store, ["p0"])
    watch.tick()
    await until(lambda: watch.yielding, "the dispatcher to yield")


async def test_while_yielding_delivery_trickles_and_starves_nothing(
    watched: tuple[Store, Watch], subscriber: tuple[Subscriber, str]
) -> None:
    store, watch = watched
    received, base = subscriber
    metrics = standard()
    async with running(store, f"{base}/s", metrics):
        await pressed(store, watch)
        ids = [f"e{n}" for n in range(40)]
        await arrive(store, ids)  # all within one window: it yields all along
        await received.wait_for("/s", 1 + len(ids))
        assert watch.yielding
        yielded = yielded_seconds(metrics)
        watch.tick()  # events arrived in the window: it goes on yielding, and says so
        await until(lambda: yielded_seconds(metrics) > yielded, "the yielded seconds to grow")
        assert watch.yielding
        watch.tick()  # a window without arrivals: it stops
        await until(lambda: not watch.yielding, "the pressure to end as arrivals stop")
        await asyncio.sleep(0.2)  # nothing more comes
    got = Counter(r.headers["ce-id"] for r in received.at("/s"))
    assert got == Counter(["p0", *ids])  # every event, each exactly once
    while_yielding = [limit for yielding, limit in watch.leases if yielding]
    assert while_yielding, "no lease was asked for while yielding"
    assert max(while_yielding) <= YIELD_STARTS
    assert len(watch.takes) == 1 + len(ids)  # p0 before it yielded, then the others:
    assert watch.takes[1:] == [(True, False)] * len(ids)  # none handed off


async def test_once_the_pressure_ends_delivery_is_full_speed_again(
    watched: tuple[Store, Watch], subscriber: tuple[Subscriber, str]
) -> None:
    store, watch = watched
    received, base = subscriber
    metrics = standard()
    async with running(store, f"{base}/s", metrics):
        await pressed(store, watch)
        await arrive(store, ["p1"])
        watch.tick(busy=False)  # events still arrive, but the loop has CPU to spare again
        await until(lambda: not watch.yielding, "the pressure to end")
        await received.wait_for("/s", 2)
        await until(lambda: any(not y and n > YIELD_STARTS for y, n in watch.leases[-1:]),
                    "a full lease after the backlog drained")  # fmt: skip
        await asyncio.sleep(0.1)  # the attempts' outcomes are recorded, their slots free
        leases, takes = len(watch.leases), len(watch.takes)
        ids = [f"e{n}" for n in range(5)]
        for ident in ids:
            await arrive(store, [ident])
            await received.wait_for_id("/s", ident)
        await until(lambda: len(watch.leases) > leases + 3, "more passes")
    assert not watch.yielding
    assert watch.takes[takes:] == [(False, True)] * len(ids)  # each handed off at once
    after = watch.leases[leases:]
    assert all(not yielding for yielding, _ in after)
    assert max(limit for _, limit in after) > YIELD_STARTS
    got = Counter(r.headers["ce-id"] for r in received.at("/s"))
    assert got == Counter(["p0", "p1", *ids])
    assert yielded_seconds(metrics) == pytest.approx(WINDOW)  # the one window it yielded in


class SlowLease(WatchedMemory):
    """A lease of "s" takes a while once delivery no longer yields (as a lease on SQLite or
    PostgreSQL awaits the database), so an append can land in the middle of it."""

    leasing = False

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        if subscription == "s" and kind is Kind.SINK and not self.watch.yielding:
            self.leasing = True
            await asyncio.sleep(0.05)
            self.leasing = False
        return await super().lease(subscription, kind, limit, now, lease_for)


async def test_rows_stored_while_yielding_go_out_before_later_ones(
    subscriber: tuple[Subscriber, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows that waited in the store while delivery yielded are not overtaken by a row handed
    off once it stops: a subscription is no longer 'caught up' once a row of it waits."""
    received, base = subscriber
    watch = Watch()
    monkeypatch.setattr("gateway.delivery.dispatcher.Pressure", watch.make)
    store = SlowLease(watch)
    await store.open()
    subs = [Subscription(n, f"{base}/{n}", delivery=Delivery(timeout=5.0)) for n in ("a", "s")]
    try:
        async with dispatching(store, subs):
            await until(lambda: len(watch.leases) > 2, "the dispatcher's first passes")
            await store.append([routed("x0", "a")], time.time(), DEDUPE_WINDOW)
            watch.tick()
            await until(lambda: watch.yielding, "the dispatcher to yield")
            passes = len(watch.leases)
            await until(lambda: len(watch.leases) > passes + 4, "passes while yielding")
            watch.tick(busy=False)  # the next pass's reading ends the pressure
            for ident in ("r1", "r2"):  # still yielding: stored for a lease
                await store.append([routed(ident, "s")], time.time(), DEDUPE_WINDOW)
            await until(lambda: store.leasing and not watch.yielding, "a lease of s, not yielding")
            await store.append([routed("r3", "s")], time.time(), DEDUPE_WINDOW)
            await received.wait_for("/s", 3)
    finally:
        await store.close()
    assert [r.headers["ce-id"] for r in received.at("/s")] == ["r1", "r2", "r3"]
