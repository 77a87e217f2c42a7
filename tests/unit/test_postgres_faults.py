"""The PostgreSQL store under faults: locks, timeouts, a session killed after COMMIT, a full
commit queue, and replicas restarting with their identity.

Runs when `GATEWAY_TEST_POSTGRES` names a database; every test gets a schema of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from gateway.errors import Backpressure, StoreUnavailable
from gateway.store import PostgresStore
from gateway.store.base import Ack, Kind
from gateway.store.pgapi import Connection
from gateway.store.postgres import parse_url
from tests.unit.test_postgres_store import OK, WINDOW, routed, sql
from tests.unit.test_store_contract import postgres_schema, with_query


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with postgres_schema(pool_max=4, timeout=1) as found:
        yield found


@pytest.fixture
async def stores(url: str) -> AsyncIterator[Callable[..., PostgresStore]]:
    """Makes stores (replicas) on the test's schema, optionally with more URL options."""
    opened: list[PostgresStore] = []

    def make(**options: str | int) -> PostgresStore:
        store = PostgresStore(*parse_url(with_query(url, **options) if options else url))
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def admin(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(parse_url(url)[0])
    yield conn
    await conn.close()


async def opened(store: PostgresStore) -> PostgresStore:
    await store.open()
    return store


# -- timeouts are not lost connections ------------------------------------------------------


async def test_a_locked_table_answers_503_and_leaves_the_pool_alone(
    stores: Callable[..., PostgresStore], admin: asyncpg.Connection
) -> None:
    store = await opened(stores())
    await store.append([routed("before", "a")], 100.0, WINDOW)
    await store.ready()
    lock = admin.transaction()
    await lock.start()
    await admin.execute("LOCK TABLE events")
    try:
        with pytest.raises(StoreUnavailable) as refused:
            await store.append([routed("blocked", "a")], 100.0, WINDOW)
        assert refused.value.status == 503
        assert refused.value.headers["Retry-After"]
        with pytest.raises(StoreUnavailable):
            await store.ready()  # writes are blocked: not ready
        for _ in range(20):  # the group's own statement timeout ends it meanwhile
            if store.pool_resets:
                break
            await asyncio.sleep(0.1)
    finally:
        await lock.rollback()
    assert store.pool_resets == 0, "a timeout was taken for a lost connection"
    assert await store.append([routed("after", "a")], 101.0, WINDOW) == [False]
    await store.ready()


async def test_outcomes_commit_while_events_are_locked(
    stores: Callable[..., PostgresStore], admin: asyncpg.Connection
) -> None:
    store = await opened(stores())
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    [row] = await store.lease("a", Kind.SINK, 10, 100.0, 30.0)
    lock = admin.transaction()
    await lock.start()
    await admin.execute("LOCK TABLE events")
    try:
        await store.finish([Ack(row, OK)], 101.0)
    finally:
        await lock.rollback()
    assert await sql_rows(admin, "SELECT state FROM deliveries") == [(1,)]


async def sql_rows(conn: asyncpg.Connection, query: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await conn.fetch(query)]


# -- a committed group is never run again ---------------------------------------------------


async def test_a_session_killed_right_after_commit_does_not_run_the_group_again(
    stores: Callable[..., PostgresStore], admin: asyncpg.Connection, url: str
) -> None:
    store = await opened(stores())
    killed: list[int] = []

    async def kill(conn: Connection) -> None:
        pid = conn.get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        killed.append(pid)

    store.after_commit(kill)
    assert await store.append([routed("e1", "a", "b")], 100.0, WINDOW) == [False]
    store.after_commit(None)
    assert killed, "the hook did not run"
    assert await sql(url, "SELECT count(*) FROM events") == [(1,)]
    assert await sql(url, "SELECT count(*) FROM deliveries") == [(2,)]
    assert store.pool_resets == 0  # only the killed connection was dropped
    assert await store.append([routed("e2", "a")], 101.0, WINDOW) == [False]
    assert await store.append([routed("e1", "a")], 101.0, WINDOW) == [True]


# -- bounded waiting --------------------------------------------------------------------------


async def test_a_full_commit_queue_answers_429_at_once(
    stores: Callable[..., PostgresStore], admin: asyncpg.Connection
) -> None:
    store = await opened(stores(max_waiting=2, timeout=5))
    lock = admin.transaction()
    await lock.start()
    await admin.execute("LOCK TABLE events")
    try:
        running = asyncio.ensure_future(store.append([routed("r", "a")], 100.0, WINDOW))
        while not await admin.fetchval(
            "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass AND NOT granted"
        ):
            await asyncio.sleep(0.05)  # the first group waits for the lock
        waiting = [
            asyncio.ensure_future(store.append([routed(f"w{i}", "a")], 100.0, WINDOW))
            for i in range(2)
        ]
        await asyncio.sleep(0)
        with pytest.raises(Backpressure) as full:
            await store.append([routed("over", "a")], 100.0, WINDOW)
        assert full.value.status == 429
        assert full.value.headers["Retry-After"]
    finally:
        await lock.rollback()
    assert await asyncio.gather(running, *waiting) == [[False]] * 3


# -- replica identity -------------------------------------------------------------------------


async def test_a_restarted_replica_gives_back_its_own_leases_only(
    stores: Callable[..., PostgresStore],
) -> None:
    now = time.time()
    first = await opened(stores(replica="gw-0"))
    other = await opened(stores(replica="gw-1"))
    await first.append([routed("mine", "a"), routed("theirs", "b")], now, WINDOW)
    [mine] = await first.lease("a", Kind.SINK, 10, now, 300.0)
    [theirs] = await other.lease("b", Kind.SINK, 10, now, 300.0)
    await first.close()  # as if it died holding the lease

    again = await opened(stores(replica="gw-0"))
    assert again.given_back == 1
    later = time.time()
    [retaken] = await again.lease("a", Kind.SINK, 10, later, 300.0)
    assert (retaken.id, retaken.event.id) == (mine.id, "mine")
    assert await again.lease("b", Kind.SINK, 10, later, 300.0) == []  # gw-1 is alive
    await other.finish([Ack(theirs, OK)], later)
    await again.finish([Ack(retaken, OK)], later)
    assert await again.pending() == 0


async def test_an_identity_in_use_is_not_taken_twice(
    stores: Callable[..., PostgresStore],
) -> None:
    now = time.time()
    live = await opened(stores(replica="gw-0"))
    await live.append([routed("e1", "a")], now, WINDOW)
    [held] = await live.lease("a", Kind.SINK, 10, now, 300.0)
    twin = await opened(stores(replica="gw-0"))  # misconfigured: the same identity
    assert twin.replica != "gw-0"
    assert twin.given_back == 0
    assert await twin.lease("a", Kind.SINK, 10, time.time(), 300.0) == []
    await live.finish([Ack(held, OK)], time.time())
    assert await live.pending() == 0
