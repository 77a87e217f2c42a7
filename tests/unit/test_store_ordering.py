"""Per-key ordering (CONTRACT 5) as every store must keep it: the `Store` contract's fixture,
so memory, SQLite and PostgreSQL pass the same tests; and two PostgreSQL replicas on one schema
never holding two rows of one key at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from gateway.store.base import Ack, Dead, Kind, NewEvent, Retry, Store
from gateway.store.postgres import PostgresStore
from tests.unit.test_postgres_store import replicas, stores, url
from tests.unit.test_store_contract import FAILED, GONE, LEASE, OK, WINDOW, event, store

__all__ = ["store", "stores", "url"]  # fixtures


def keyed(ident: str, key: str | None, *subs: str) -> NewEvent:
    """An event routed to `subs` (default "a"), each row with ordering key `key`."""
    names = subs or ("a",)
    return NewEvent(event(ident), names, (key,) * len(names))


async def ids_leased(store: Store, now: float, sub: str = "a", kind: Kind = Kind.SINK) -> list[str]:
    return [row.event.id for row in await store.lease(sub, kind, 50, now, LEASE)]


async def test_only_the_head_of_each_key_is_leased(store: Store) -> None:
    await store.append(
        [keyed("a1", "A"), keyed("a2", "A"), keyed("b1", "B"), keyed("n1", None),
         keyed("n2", None), keyed("b2", "B")],
        100.0, WINDOW,
    )  # fmt: skip
    first = await store.lease("a", Kind.SINK, 50, 100.0, LEASE)
    assert sorted(row.event.id for row in first) == ["a1", "b1", "n1", "n2"]
    assert {row.event.id: row.ordering_key for row in first}["a1"] == "A"
    assert await ids_leased(store, 101.0) == []  # a1 and b1 in flight hold their keys
    await store.finish([Ack(row, OK) for row in first if row.event.id == "a1"], 102.0)
    assert await ids_leased(store, 102.0) == ["a2"]  # the head ended: the next one, at once


async def test_a_failing_key_holds_back_only_itself(store: Store) -> None:
    await store.append([keyed("a1", "A"), keyed("a2", "A"), keyed("a3", "A")], 100.0, WINDOW)
    (head,) = await store.lease("a", Kind.SINK, 50, 100.0, LEASE)
    await store.finish([Retry(head, FAILED, 200.0)], 101.0)
    # The key waits for its head's retry: nothing of it is due before 200.
    assert await store.next_due(["a"]) == 200.0
    await store.append([keyed("b1", "B"), keyed("n1", None)], 110.0, WINDOW)
    assert sorted(await ids_leased(store, 150.0)) == ["b1", "n1"]
    assert await ids_leased(store, 170.0) == []  # b1, n1 in flight; a1 not due yet
    assert "a1" in await ids_leased(store, 200.0)


async def test_dead_lettering_the_head_releases_the_key(store: Store) -> None:
    await store.append([keyed("a1", "A"), keyed("a2", "A")], 100.0, WINDOW)
    (head,) = await store.lease("a", Kind.SINK, 50, 100.0, LEASE)
    await store.finish([Dead(head, FAILED, GONE, notify_sink=True)], 101.0)
    assert await ids_leased(store, 101.0) == ["a2"]
    # Notices are never ordered: the notice goes while a2 of the same key is in flight.
    (notice,) = await store.lease("a", Kind.DEAD_LETTER, 50, 101.0, LEASE)
    assert notice.event.id == "a1"
    assert notice.ordering_key is None


async def test_keys_are_per_subscription(store: Store) -> None:
    # One event, two ordered subscriptions with different keys, and an unordered one.
    await store.append(
        [NewEvent(event("e1"), ("a", "b", "c"), ("A", "X", None)),
         NewEvent(event("e2"), ("a", "b", "c"), ("A", "Y", None))],
        100.0, WINDOW,
    )  # fmt: skip
    assert await ids_leased(store, 100.0, "a") == ["e1"]
    assert sorted(await ids_leased(store, 100.0, "b")) == ["e1", "e2"]
    assert sorted(await ids_leased(store, 100.0, "c")) == ["e1", "e2"]


async def test_rows_behind_a_leased_head_are_not_due_before_its_lease_ends(store: Store) -> None:
    await store.append([keyed(f"a{i}", "A") for i in range(5)], 100.0, WINDOW)
    (head,) = await store.lease("a", Kind.SINK, 50, 100.0, LEASE)
    # A blocked key does not make the dispatcher poll: its next due time is the lease's end.
    assert await store.next_due(["a"]) == 100.0 + LEASE
    await store.finish([Ack(head, OK)], 105.0)
    assert await store.next_due(["a"]) == 105.0


async def test_rows_arriving_behind_a_leased_head_do_not_make_it_due(store: Store) -> None:
    await store.append([keyed("a1", "A")], 100.0, WINDOW)
    await store.lease("a", Kind.SINK, 50, 100.0, LEASE)
    await store.append([keyed("a2", "A")], 105.0, WINDOW)  # after the head's lease parked any
    assert await store.next_due(["a"]) == 100.0 + LEASE
    await store.append([keyed("b1", "B")], 110.0, WINDOW)
    assert await store.next_due(["a"]) == 110.0


async def test_a_head_given_back_untried_keeps_its_place(store: Store) -> None:
    # The circuit breaker gives rows back due at their arrival: the order still holds.
    await store.append([keyed("a1", "A")], 100.0, WINDOW)
    await store.append([keyed("a2", "A")], 101.0, WINDOW)
    (head,) = await store.lease("a", Kind.SINK, 50, 102.0, LEASE)
    await store.finish([Retry(head, None, head.received_at)], 103.0)
    assert await ids_leased(store, 103.0) == ["a1"]


async def test_two_replicas_never_hold_two_rows_of_one_key(
    stores: Callable[..., PostgresStore],
) -> None:
    a, b = await replicas(stores, 2)
    keys = [f"k{i}" for i in range(6)]
    sent = [keyed(f"e{i}", keys[i % len(keys)]) for i in range(120)]
    # Appended concurrently by both replicas, a few events per call, keys interleaved.
    await asyncio.gather(*(
        (a if n % 2 else b).append(sent[n : n + 4], 100.0, WINDOW) for n in range(0, 120, 4)
    ))  # fmt: skip
    held: dict[str, str] = {}  # key -> event in flight
    order: dict[str, list[int]] = {key: [] for key in keys}
    rng = random.Random(7)

    async def work(store: PostgresStore) -> None:
        idle = 0
        while idle < 20:
            rows = await store.lease("a", Kind.SINK, 4, 100.0, LEASE)
            idle = 0 if rows else idle + 1
            for row in rows:
                assert row.ordering_key is not None
                assert row.ordering_key not in held, f"{row.ordering_key} leased twice at once"
                held[row.ordering_key] = row.event.id
                order[row.ordering_key].append(row.id)
            await asyncio.sleep(rng.random() / 1000)
            for row in rows:
                del held[row.ordering_key or ""]
            await store.finish([Ack(row, OK) for row in rows], 100.0)

    await asyncio.gather(*(work(store) for store in (a, b, a, b)))
    assert sum(len(ids) for ids in order.values()) == len(sent)
    for key, ids in order.items():
        assert ids == sorted(ids), f"key {key} delivered out of order"


def every(events: object) -> int:
    return len(events)  # type: ignore[arg-type]


async def batch_ids(store: Store, now: float, limit: int = 50) -> list[str]:
    rows = await store.lease_batch("a", limit, now, LEASE, 0.0, every)
    return [row.event.id for row in rows]


async def test_batches_hold_a_prefix_of_each_key_and_a_key_waits_for_its_batch(
    store: Store,
) -> None:
    await store.append(
        [keyed("a1", "A"), keyed("b1", "B"), keyed("a2", "A"), keyed("n1", None),
         keyed("b2", "B")],
        100.0, WINDOW,
    )  # fmt: skip
    # The limit cuts after a2: the batch holds A's first two and B's first, in order.
    first = await store.lease_batch("a", 3, 100.0, LEASE, 0.0, every)
    assert [row.event.id for row in first] == ["a1", "b1", "a2"]
    await store.append([keyed("a3", "A"), keyed("c1", "C")], 101.0, WINDOW)
    # A and B have a batch in flight: their later events wait; the others go.
    assert await batch_ids(store, 101.0) == ["n1", "c1"]
    # The batch fails and is retried whole; A and B keep waiting for it.
    await store.finish([Retry(row, FAILED, 105.0) for row in first], 102.0)
    assert await batch_ids(store, 103.0) == []
    again = await store.lease_batch("a", 50, 105.0, LEASE, 0.0, every)
    assert [row.event.id for row in again] == ["a1", "b1", "a2"]  # the same group
    await store.finish([Ack(row, OK) for row in again], 106.0)
    assert await batch_ids(store, 106.0) == ["b2", "a3"]


def test_parking_reads_only_the_rows_of_the_key_still_due(tmp_path: object) -> None:
    """Leasing a head parks the rows behind it; the query must reach only those still due
    (migration 11's index), not every row of the key: that made a backlog of n rows per key
    cost about n²/2 row visits to drain."""
    import sqlite3
    from pathlib import Path

    from gateway.store.migrator import load_migrations, migrate_sqlite
    from gateway.store.queries import load_queries

    with sqlite3.connect(Path(str(tmp_path)) / "plan.db") as conn:
        migrate_sqlite(conn, load_migrations("sqlite"), 0.0)
        query = load_queries("sqlite.sql")["park_followers"]
        plan = " ".join(
            str(step[3])
            for step in conn.execute(f"EXPLAIN QUERY PLAN {query}", {"id": 1, "due_at": 2.0,
                                                                     "upto": 1.0})
        )  # fmt: skip
    assert "deliveries_ordering_due" in plan
    assert "due_at<?" in plan.replace(" ", "")
