"""The batch part of the `Store` contract (CONTRACT 5, `mode: batch`), run against every store:
`lease_batch` groups rows, lingers, re-leases a group whole with its identity after a retry or
an expired lease, and dead-letters per row. Plus two PostgreSQL replicas leasing batches at
once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.event import Event
from gateway.store import open_store
from gateway.store.base import (
    Ack,
    Attempt,
    Dead,
    DeadLetterInfo,
    Kind,
    Leased,
    Opened,
    Retry,
    Store,
)
from tests.unit.test_store_contract import LEASE, WINDOW, postgres_schema, routed, store

__all__ = ["store"]  # the fixture, parametrized over every store

FAILED = Attempt(503, 4.0)
INFO = DeadLetterInfo("exhausted", 503, 2, "https://sink.test/")


def every(events: Sequence[Event]) -> int:
    return len(events)


async def batch(
    store: Store, now: float, limit: int = 10, linger: float = 0.0, fits: object = every
) -> list[Leased]:
    assert callable(fits)
    return await store.lease_batch("b", limit, now, LEASE, linger, fits)


async def add(store: Store, count: int, now: float, first: int = 0) -> None:
    await store.append([routed(f"e{i}", "b") for i in range(first, first + count)], now, WINDOW)


async def test_fresh_rows_become_groups_of_at_most_limit(store: Store) -> None:
    await add(store, 5, 100.0)
    first = await batch(store, 100.0, limit=3)
    assert [row.event.id for row in first] == ["e0", "e1", "e2"]
    assert {row.batch for row in first} == {first[0].id}
    assert [row.attempt for row in first] == [1, 1, 1]
    assert all(row.kind is Kind.SINK for row in first)
    second = await batch(store, 100.0, limit=3)
    assert [row.event.id for row in second] == ["e3", "e4"]
    assert {row.batch for row in second} == {second[0].id} != {first[0].id}
    assert await batch(store, 100.0, limit=3) == []


async def test_linger_holds_a_short_batch_until_the_oldest_has_waited(store: Store) -> None:
    await add(store, 2, 100.0)
    assert await batch(store, 100.01, limit=5, linger=0.05) == []
    assert len(await batch(store, 100.06, limit=5, linger=0.05)) == 2
    await add(store, 5, 110.0, first=10)  # a full batch goes at once
    assert len(await batch(store, 110.0, limit=5, linger=0.05)) == 5


async def test_fits_bounds_the_batch_but_never_below_one_row(store: Store) -> None:
    await add(store, 4, 100.0)
    assert len(await batch(store, 100.0, fits=lambda events: 2)) == 2
    assert len(await batch(store, 100.0, fits=lambda events: 0)) == 1
    assert len(await batch(store, 100.0)) == 1


async def test_a_retried_group_is_leased_whole_with_its_identity(store: Store) -> None:
    await add(store, 3, 100.0)
    rows = await batch(store, 100.0)
    await store.finish([Retry(row, FAILED, 150.0) for row in rows], 101.0)
    await add(store, 2, 120.0, first=3)  # fresh rows never join an existing group
    again = await batch(store, 150.0, limit=1)  # a group is leased whole, whatever the limit
    assert [row.id for row in again] == [row.id for row in rows]
    assert {row.batch for row in again} == {rows[0].batch}
    assert [row.attempt for row in again] == [2, 2, 2]
    await store.finish([Ack(row, Attempt(200, 3.0)) for row in again], 151.0)
    fresh = await batch(store, 151.0)
    assert [row.event.id for row in fresh] == ["e3", "e4"]
    assert fresh[0].batch not in {rows[0].batch}


async def test_an_expired_lease_makes_the_whole_group_due_together(store: Store) -> None:
    await add(store, 3, 100.0)
    rows = await batch(store, 100.0)
    assert await batch(store, 100.0 + LEASE - 1) == []  # held by the lease
    again = await batch(store, 100.0 + LEASE + 1, limit=2)
    assert [row.id for row in again] == [row.id for row in rows]
    assert {row.batch for row in again} == {rows[0].batch}
    # The crashed holder's outcome is fenced off.
    await store.finish([Ack(row, Attempt(200, 1.0)) for row in rows], 140.0)
    assert await store.pending() == 3


async def test_an_exhausted_group_is_dead_lettered_per_row(store: Store) -> None:
    await add(store, 2, 100.0)
    rows = await batch(store, 100.0)
    await store.finish([Dead(row, FAILED, INFO, notify_sink=True) for row in rows], 101.0)
    letters = await store.dead_letters("b", 10)
    assert sorted(letter.event.id for letter in letters) == ["e0", "e1"]
    notices = await store.lease("b", Kind.DEAD_LETTER, 10, 102.0, LEASE)
    assert sorted(row.event.id for row in notices) == ["e0", "e1"]
    # A redelivered row joins a new group.
    assert await store.redeliver(rows[1].id, 103.0)
    alone = await batch(store, 103.0)
    assert [(row.id, row.batch) for row in alone] == [(rows[1].id, rows[1].id)]


async def test_an_open_breaker_holds_batches(store: Store) -> None:
    await add(store, 2, 100.0)
    await store.open_breaker("b", Opened(200.0, 30.0, "HTTP 503"), 100.0)
    assert await batch(store, 150.0) == []
    await store.close_breaker("b")
    assert len(await batch(store, 150.0)) == 2


async def test_replicas_never_split_a_group_nor_lease_a_row_twice() -> None:
    async with postgres_schema(pool_max=4) as url:
        a, b = open_store(url), open_store(url)
        for opened in (a, b):
            await opened.open()
        try:
            await a.append([routed(f"e{i}", "b") for i in range(300)], 100.0, WINDOW)
            groups: dict[int, list[int]] = {}

            async def drain(replica: Store, now: float) -> None:
                while rows := await replica.lease_batch("b", 7, now, LEASE, 0.0, every):
                    (group,) = {row.batch for row in rows}
                    assert group is not None
                    assert group not in groups
                    groups[group] = [row.id for row in rows]

            await asyncio.gather(*(drain(replica, 100.0) for replica in (a, b) * 3))
            ids = [ident for rows in groups.values() for ident in rows]
            assert len(ids) == len(set(ids)) == 300
            first = dict(groups)
            # After every lease expires, each group comes back whole, once.
            groups.clear()
            await asyncio.gather(*(drain(replica, 100.0 + LEASE + 1) for replica in (a, b) * 3))
            assert groups == first
        finally:
            await a.close()
            await b.close()
