"""The handoff (`Store.hand_off`) as every store must keep it: a row taken by the dispatcher is
leased by the append's own transaction (handed over only once committed, leasable by nobody
until its lease ends, then leased again like any expired lease); a row not taken is leased as
usual; an append that rolls back gives its reservations back. The PostgreSQL store does not
take rows: every row stays leasable there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from gateway.store.base import Ack, Handoff, Kind, Leased, NewEvent, Store
from gateway.store.memory import MemoryStore
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from tests.unit.test_store_contract import LEASE, OK, WINDOW, event, routed, store

__all__ = ["store"]  # the contract's fixture: memory, SQLite and PostgreSQL


class Taker:
    """A dispatcher's side of the handoff that takes the subscriptions in `wanted`."""

    def __init__(self, *wanted: str) -> None:
        self.wanted = set(wanted)
        self.asked: list[str] = []
        self.handed: list[Leased] = []
        self.dropped: list[str] = []

    def handoff(self) -> Handoff:
        return Handoff(self.take, self.taken, self.drop)

    def take(self, name: str, now: float) -> float | None:
        self.asked.append(name)
        return now + LEASE if name in self.wanted else None

    def taken(self, rows: Sequence[Leased]) -> None:
        self.handed.extend(rows)

    def drop(self, names: Sequence[str]) -> None:
        self.dropped.extend(names)


@pytest.fixture(params=["memory", "sqlite"])
async def taking(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Store]:
    """The stores that take rows."""
    opened: Store = MemoryStore() if request.param == "memory" else SqliteStore(
        f"{tmp_path}/gateway.db"
    )
    await opened.open()
    yield opened
    await opened.close()


async def test_a_taken_row_is_handed_over_leased_and_the_rest_are_leased_as_usual(
    store: Store,
) -> None:
    taker = Taker("fast")
    store.hand_off(taker.handoff())
    sent = event("e1", traceparent="00-ab-cd-01")
    assert await store.append([NewEvent(sent, ("fast", "slow"))], 100.0, WINDOW) == [False]
    assert await store.pending() == 2
    [slow] = await store.lease("slow", Kind.SINK, 10, 100.0, LEASE)
    assert slow.event == sent
    if isinstance(store, PostgresStore):
        assert taker.handed == []
        assert taker.asked == []
        return
    [row] = taker.handed
    assert (row.subscription, row.kind, row.attempt, row.event) == ("fast", Kind.SINK, 1, sent)
    assert row.received_at == 100.0
    assert await store.lease("fast", Kind.SINK, 10, 100.0 + LEASE - 1, LEASE) == []  # held
    await store.finish([Ack(row, OK)], 101.0)  # its lease is the append's
    assert await store.pending() == 1
    counts = await store.counts()
    assert counts["fast"].delivered == 1
    assert counts["fast"].backlog == 0


async def test_a_taken_row_whose_attempt_never_ends_is_leased_again_when_its_lease_ends(
    taking: Store,
) -> None:
    """A process killed with rows it took: they are leased again once the lease ends."""
    taker = Taker("a")
    taking.hand_off(taker.handoff())
    await taking.append([routed("e1", "a")], 100.0, WINDOW)
    [taken] = taker.handed
    [again] = await taking.lease("a", Kind.SINK, 10, 100.0 + LEASE + 1, LEASE)
    assert (again.id, again.attempt, again.event.id) == (taken.id, 2, "e1")
    await taking.finish([Ack(taken, OK)], 200.0)  # the first lease is over: changes nothing
    assert await taking.pending() == 1


async def test_ordered_rows_and_duplicates_are_never_offered(taking: Store) -> None:
    taker = Taker("a")
    taking.hand_off(taker.handoff())
    keyed = NewEvent(event("k1", partitionkey="p"), ("a",), ordering_keys=("p",))
    await taking.append([keyed, routed("e1", "a")], 100.0, WINDOW)
    await taking.append([routed("e1", "a")], 101.0, WINDOW)  # a duplicate: no row at all
    assert taker.asked == ["a"]
    assert [row.event.id for row in taker.handed] == ["e1"]
    assert [row.event.id for row in await taking.lease("a", Kind.SINK, 10, 102.0, LEASE)] == [
        "k1"
    ]


async def test_an_append_that_rolls_back_gives_its_reservations_back(store: Store) -> None:
    taker = Taker("a", "b")
    store.hand_off(taker.handoff())
    bad = NewEvent(event("e2", huge=2**70), ("b",))  # its attributes cannot be stored
    with pytest.raises(TypeError):
        await store.append([routed("e1", "a"), bad], 100.0, WINDOW)
    assert taker.handed == []
    assert sorted(taker.dropped) == sorted(taker.asked)  # every reservation given back
    assert await store.pending() == 0
    store.hand_off(None)  # no longer offered
    await store.append([routed("e3", "a")], 101.0, WINDOW)
    assert len(taker.asked) == len(taker.dropped)
    assert taker.handed == []
    assert [row.event.id for row in await store.lease("a", Kind.SINK, 10, 101.0, LEASE)] == [
        "e3"
    ]
