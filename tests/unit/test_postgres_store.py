"""PostgreSQL-only behaviour: replicas sharing one database, migrations, wakeups, outages.

Runs when `GATEWAY_TEST_POSTGRES` names a database; every test gets a schema of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.errors import StoreUnavailable
from gateway.event import AttributeValue, DataKind, Event
from gateway.store import PostgresStore, open_store
from gateway.store.base import Ack, Attempt, Kind, NewEvent, Retry
from gateway.store.migrator import Migration, load_migrations
from gateway.store.postgres import PoolSettings, parse_url
from tests.unit.test_store_contract import postgres_schema, with_query

WINDOW = 3600.0
OK = Attempt(200, 1.0)


def routed(ident: str, *subscriptions: str, source: str = "/shop") -> NewEvent:
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": ident,
        "source": source,
        "type": "com.example.order.created",
    }
    return NewEvent(Event(attributes, b'{"n": 1}', DataKind.JSON), subscriptions)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with postgres_schema(pool_max=4) as found:
        yield found


@pytest.fixture
async def stores(url: str) -> AsyncIterator[Callable[..., PostgresStore]]:
    """Makes stores on the test's schema (replicas); closes them afterwards."""
    opened: list[PostgresStore] = []

    def make(
        migrations: tuple[Migration, ...] | None = None, replica: str | None = None
    ) -> PostgresStore:
        found = with_query(url, replica=replica) if replica else url
        store = PostgresStore(*parse_url(found), migrations=migrations)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def replicas(make: Callable[..., PostgresStore], count: int) -> list[PostgresStore]:
    found = [make() for _ in range(count)]
    for store in found:
        await store.open()
    return found


async def sql(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(parse_url(url)[0])  # the store's own options taken off
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


# -- several replicas on one database -------------------------------------------------------


async def test_skip_locked_never_leases_one_row_twice(
    stores: Callable[..., PostgresStore],
) -> None:
    a, b = await replicas(stores, 2)
    total = 600
    await a.append([routed(f"e{i}", "sub") for i in range(total)], 100.0, WINDOW)
    leased: list[tuple[str, int]] = []

    async def drain(store: PostgresStore, name: str) -> None:
        while rows := await store.lease("sub", Kind.SINK, 7, 100.0, 30.0):
            leased.extend((name, row.id) for row in rows)

    # Four leasing loops per replica, all at once, on one subscription.
    await asyncio.gather(*(drain(store, name) for store, name in [(a, "a"), (b, "b")] * 4))
    ids = [ident for _, ident in leased]
    assert len(ids) == total
    assert len(set(ids)) == total, "a row was leased twice"
    assert {name for name, _ in leased} == {"a", "b"}  # both replicas took part


async def test_dedupe_holds_across_replicas(stores: Callable[..., PostgresStore]) -> None:
    a, b = await replicas(stores, 2)
    keys = [f"e{i}" for i in range(200)]
    first, second = await asyncio.gather(
        a.append([routed(k, "sub") for k in keys], 100.0, WINDOW),
        b.append([routed(k, "sub") for k in reversed(keys)], 100.0, WINDOW),
    )
    verdicts = zip(first, reversed(second), strict=True)
    assert all(x != y for x, y in verdicts), "each key is new at exactly one replica"
    rows = await a.lease("sub", Kind.SINK, 1000, 100.0, 30.0)
    assert sorted(row.event.id for row in rows) == sorted(keys)


async def test_a_dead_replicas_leases_expire_and_are_not_given_back_by_another(
    stores: Callable[..., PostgresStore],
) -> None:
    a, b = stores(replica="a"), stores(replica="b")
    await a.open()
    await b.open()
    await a.append([routed("e1", "sub")], 100.0, WINDOW)
    [held] = await a.lease("sub", Kind.SINK, 10, 100.0, 30.0)
    await a.close()  # as if killed while holding the lease
    late = stores(replica="late")
    await late.open()  # another replica starting now must not take the lease away
    assert await late.lease("sub", Kind.SINK, 10, 120.0, 30.0) == []
    [taken] = await b.lease("sub", Kind.SINK, 10, 130.0, 30.0)
    assert (taken.id, taken.attempt) == (held.id, 2)
    await b.finish([Ack(held, OK)], 131.0)  # the dead holder's lease no longer counts
    assert await b.pending() == 1
    await b.finish([Ack(taken, OK)], 131.0)
    assert await b.pending() == 0


async def test_pending_sees_other_replicas_backlog(stores: Callable[..., PostgresStore]) -> None:
    a, b = await replicas(stores, 2)
    await a.append([routed("e1", "x", "y"), routed("e2", "x")], 100.0, WINDOW)
    assert await b.pending() == 3


async def test_wakeup_reaches_another_replica(stores: Callable[..., PostgresStore]) -> None:
    woken = asyncio.Event()
    listening = stores()
    listening.on_wakeup(woken.set)
    await listening.open()
    [other] = await replicas(stores, 1)

    await other.append([routed("e1", "sub")], 100.0, WINDOW)
    await asyncio.wait_for(woken.wait(), 10)

    [row] = await other.lease("sub", Kind.SINK, 10, 100.0, 30.0)
    woken.clear()
    await other.finish([Retry(row, Attempt(500, 1.0), 101.0)], 100.0)
    await asyncio.wait_for(woken.wait(), 10)


# -- group commit ---------------------------------------------------------------------------


async def test_concurrent_writes_share_one_commit(stores: Callable[..., PostgresStore]) -> None:
    [store] = await replicas(stores, 1)
    await store.append([routed("e0", "a")], 100.0, WINDOW)
    [row] = await store.lease("a", Kind.SINK, 10, 100.0, 30.0)
    before = store.commits
    results = await asyncio.gather(
        store.append([routed("e1", "a")], 101.0, WINDOW),
        store.append([routed("e2", "a", "b"), routed("e1", "a")], 101.5, WINDOW),
        store.append([routed("e2", "a")], 102.0, WINDOW),
        store.finish([Ack(row, OK)], 101.0),
    )
    assert list(results) == [[False], [False, True], [True], None]
    assert store.commits == before + 2  # the appends share one commit, outcomes another
    assert await store.pending() == 3


async def test_each_group_commit_is_timed(stores: Callable[..., PostgresStore]) -> None:
    [store] = await replicas(stores, 1)
    seen: list[float] = []
    store.on_commit(seen.append)  # once open: reaches both running groups
    await store.append([routed("e0", "a")], 100.0, WINDOW)
    [row] = await store.lease("a", Kind.SINK, 10, 100.0, 30.0)
    before = len(seen)
    assert before == 1
    await asyncio.gather(
        store.append([routed("e1", "a")], 101.0, WINDOW),
        store.finish([Ack(row, OK)], 101.0),
    )
    assert len(seen) == before + 2  # the appends' group and the outcomes' group
    assert all(isinstance(s, float) and s > 0 for s in seen)


async def test_a_failing_call_fails_alone_inside_a_shared_commit(
    stores: Callable[..., PostgresStore], url: str
) -> None:
    [store] = await replicas(stores, 1)
    before = store.commits
    good, bad = await asyncio.gather(
        store.append([routed("e1", "a")], 100.0, WINDOW),
        store.append([routed("e2", "a"), routed("e3", "no\x00such")], 100.0, WINDOW),  # NUL: no
        return_exceptions=True,
    )
    assert good == [False]
    assert isinstance(bad, StoreUnavailable)
    assert store.commits == before + 1
    assert [r[0] for r in await sql(url, "SELECT id FROM events")] == ["e1"]
    assert [r[0] for r in await sql(url, "SELECT id FROM dedupe")] == ["e1"]
    assert await store.pending() == 1


async def test_close_commits_queued_writes(stores: Callable[..., PostgresStore], url: str) -> None:
    [store] = await replicas(stores, 1)
    writes = [
        asyncio.ensure_future(store.append([routed(f"e{i}", "a")], 100.0, WINDOW))
        for i in range(5)
    ]
    await asyncio.sleep(0)
    await store.close()
    assert [w.result() for w in writes] == [[False]] * 5
    assert (await sql(url, "SELECT count(*) FROM deliveries"))[0][0] == 5
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.append([routed("late", "a")], 100.0, WINDOW)


# -- migrations -----------------------------------------------------------------------------


async def test_replicas_starting_together_apply_each_migration_once(
    stores: Callable[..., PostgresStore], url: str
) -> None:
    shipped = load_migrations("postgres")
    slow = Migration(
        len(shipped) + 1,
        "slow",
        "CREATE TABLE applied (n INTEGER);\nINSERT INTO applied VALUES (1);\n"
        "SELECT pg_sleep(0.2);\n",
    )
    plan = (*shipped, slow)
    starting = [stores(migrations=plan) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in starting))
    found = await sql(url, "SELECT version, name FROM schema_migrations ORDER BY version")
    expected = [*((m.version, m.name) for m in shipped), (slow.version, "slow")]
    assert [tuple(r) for r in found] == expected
    assert (await sql(url, "SELECT count(*) FROM applied"))[0][0] == 1


async def test_a_missing_schema_is_a_clear_error() -> None:
    async with postgres_schema() as url:
        missing = url.replace("search_path=", "search_path=nothing_")
        store = open_store(missing)
        with pytest.raises(StoreUnavailable, match="no schema of the connection's search_path"):
            await store.open()


# -- outages --------------------------------------------------------------------------------


class Proxy:
    """A TCP proxy in front of the database: cutting it is a real outage, restoring it the end."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen)
        self.listen = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                end.transport.abort()
                self._open.discard(end)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@pytest.fixture
async def proxied(url: str) -> AsyncIterator[tuple[Proxy, str]]:
    parts = urlsplit(url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    user = f"{parts.username}@" if parts.username else ""
    yield proxy, urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.listen}"))
    with contextlib.suppress(Exception):
        await proxy.cut()


async def test_outage_is_store_unavailable_then_recovers(proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    woken = asyncio.Event()
    store = open_store(with_query(url, timeout=3))
    store.on_wakeup(woken.set)
    await store.open()
    try:
        await store.append([routed("e1", "a")], 100.0, WINDOW)
        await proxy.cut()
        for call in (
            store.ping(),
            store.append([routed("e2", "a")], 100.0, WINDOW),
            store.lease("a", Kind.SINK, 10, 100.0, 30.0),
            store.next_due(["a"]),
        ):
            with pytest.raises(StoreUnavailable, match="store unavailable"):
                await call
        woken.clear()
        await proxy.start()  # the database is back, on the same address
        await store.ping()
        assert await store.append([routed("e2", "a")], 101.0, WINDOW) == [False]
        assert len(await store.lease("a", Kind.SINK, 10, 101.0, 30.0)) == 2
        await asyncio.wait_for(woken.wait(), 20)  # the listener reconnected and caught up
    finally:
        await store.close()


async def test_terminated_connections_are_replaced(url: str) -> None:
    name = "gw_test_terminate"
    store = open_store(with_query(url, application_name=name))
    await store.open()
    admin = await asyncpg.connect(parse_url(url)[0])
    query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1"
    try:
        await store.append([routed("e1", "a")], 100.0, WINDOW)
        for round_ in range(5):  # the next call after a termination just works
            assert await admin.fetch(query, name), "nothing was terminated"
            assert await store.append([routed(f"t{round_}", "a")], 100.0, WINDOW) == [False]
            assert await admin.fetch(query, name), "nothing was terminated"
            assert await store.lease("a", Kind.SINK, 1, 100.0, 30.0)
            assert await admin.fetch(query, name), "nothing was terminated"
            await store.ping()
    finally:
        await admin.close()
        await store.close()


async def test_errors_never_repeat_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket is closed
    store = open_store(f"postgresql://gw:s3cret@127.0.0.1:{port}/gateway?timeout=2")
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert "s3cret" not in caught.value.detail
    assert "s3cret" not in repr(caught.value)


# -- the store URL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "dsn", "settings"),
    [
        (
            "postgresql://gw:pw@db:5432/gateway",
            "postgresql://gw:pw@db:5432/gateway?application_name=gateway",
            PoolSettings(1, 10, 10.0),
        ),
        (
            "postgres://db/gw?pool_min=0&pool_max=3&timeout=2.5&sslmode=require",
            "postgres://db/gw?sslmode=require&application_name=gateway",
            PoolSettings(0, 3, 2.5),
        ),
        (
            "postgresql://db/gw?application_name=eu-1&search_path=tenant_a",
            "postgresql://db/gw?application_name=eu-1&search_path=tenant_a",
            PoolSettings(),
        ),
    ],
)
def test_pool_settings_come_off_the_url(url: str, dsn: str, settings: PoolSettings) -> None:
    assert parse_url(url) == (dsn, settings)
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert store.settings == settings


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_max=ten", "whole numbers"),
        ("pool_min=5&pool_max=2", "pool_min <= pool_max"),
        ("pool_max=0", "pool_max >= 1"),
        ("timeout=0", "timeout must be more than 0"),
    ],
)
def test_bad_pool_settings_are_refused_without_the_password(query: str, message: str) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_store(f"postgresql://gw:s3cret@db/gateway?{query}")
    assert message in caught.value.detail
    assert "s3cret" not in caught.value.detail



async def test_tallies_are_kept_per_replica_and_summed(
    stores: Callable[..., PostgresStore],
) -> None:
    a, b = stores(replica="a"), stores(replica="b")
    await a.open()
    await b.open()
    await a.append([routed(f"e{i}", "sub") for i in range(4)], 100.0, WINDOW)
    mine = await a.lease("sub", Kind.SINK, 2, 100.0, 30.0)
    theirs = await b.lease("sub", Kind.SINK, 2, 100.0, 30.0)
    await asyncio.gather(
        a.finish([Ack(row, OK) for row in mine], 101.0),
        b.finish([Retry(theirs[0], Attempt(502, 1.0), 200.0), Ack(theirs[1], OK)], 102.0),
    )
    for store in (a, b):  # any replica answers for the deployment
        counts = (await store.counts())["sub"]
        assert (counts.backlog, counts.delivered, counts.failed) == (1, 3, 1)
        assert counts.last_error == "HTTP 502"
