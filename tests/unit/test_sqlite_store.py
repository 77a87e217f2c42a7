"""SQLite-only behaviour: durability across reopen, WAL, group commit, the lock file, the plan."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import StoreUnavailable
from gateway.event import AttributeValue, DataKind, Event
from gateway.store import MemoryStore, SqliteStore, open_store
from gateway.store.base import (
    Ack,
    Attempt,
    Dead,
    DeadLetterInfo,
    Kind,
    NewEvent,
    PausedOn,
    Retry,
)
from gateway.store.queries import load_queries, parse_queries
from gateway.store.sqlite import PURGE_CHUNK

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 3600.0
QUERIES = load_queries("sqlite.sql")


def routed(ident: str, *subscriptions: str, **extra: int) -> NewEvent:
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": ident,
        "source": "/shop",
        "type": "t",
        **extra,
    }
    return NewEvent(Event(attributes, b'{"n": 1}', DataKind.JSON), subscriptions)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "gateway.db"  # the folder does not exist yet


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(db))
    await opened.open()
    yield opened
    await opened.close()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the file through a connection of its own, as another reader would."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_reopen_keeps_everything_and_gives_back_leases(db: Path) -> None:
    first = SqliteStore(str(db))
    await first.open()
    await first.append([routed("e1", "a"), routed("e2", "a", "b")], 100.0, 1e9)
    await first.pause("b", PausedOn.of("https://b.test/"), "410 Gone", 100.0)
    held = await first.lease("a", Kind.SINK, 10, 100.0, 1e12)  # as if the process then crashed
    assert len(held) == 2
    await first.close()

    second = SqliteStore(str(db))
    await second.open()
    try:
        assert await second.pending() == 3
        (on,) = (await second.paused()).values()
        assert on.sink == "https://b.test/"
        assert on.same("https://b.test/")
        assert not on.same("https://b.test/?v=2")
        assert await second.append([routed("e1", "a")], 200.0, 1e9) == [True]
        later = time.time() + 1
        back = await second.lease("a", Kind.SINK, 10, later, 30.0)
        assert [(r.id, r.attempt) for r in back] == [(held[0].id, 2), (held[1].id, 2)]
        assert back[0].event == held[0].event
        await second.finish([Ack(held[0], Attempt(200, 1.0))], later)  # the old lease is void
        assert await second.pending() == 3
    finally:
        await second.close()


async def test_wal_and_synchronous_settings(tmp_path: Path) -> None:
    for option, expected in [("", "normal"), ("?synchronous=full", "full")]:
        path = tmp_path / f"gw{expected}.db"
        store = open_store(f"sqlite:///{path}{option}")
        assert isinstance(store, SqliteStore)
        await store.open()
        try:
            assert (store.durability().journal_mode, store.durability().synchronous) == (
                "wal",
                expected,
            )
            assert rows(path, "PRAGMA journal_mode") == [("wal",)]  # WAL is kept by the file
        finally:
            await store.close()


async def test_concurrent_writes_share_one_commit(store: SqliteStore) -> None:
    await store.append([routed("e0", "a")], 100.0, WINDOW)
    [row] = await store.lease("a", Kind.SINK, 10, 100.0, 30.0)
    before = store.commits
    results = await asyncio.gather(
        store.append([routed("e1", "a")], 101.0, WINDOW),
        store.append([routed("e2", "a", "b")], 101.0, WINDOW),
        store.finish([Ack(row, Attempt(200, 1.0))], 101.0),
    )
    assert list(results) == [[False], [False], None]
    assert store.commits == before + 1
    assert await store.pending() == 3
    assert rows(store_path(store), "SELECT COUNT(*) FROM events") == [(3,)]


async def test_outcomes_recorded_together_share_one_unit_and_one_tally(
    store: SqliteStore,
) -> None:
    """Finishes queued while the writer is busy join one unit: every outcome applied, the
    tallies counted once each, and a caller that gives up does not cancel the others."""
    await store.append([routed(f"e{i}", "a") for i in range(20)], 100.0, WINDOW)
    leased = await store.lease("a", Kind.SINK, 20, 100.0, 30.0)
    before = store.commits
    calls = [
        asyncio.ensure_future(store.finish([Ack(row, Attempt(200, 1.0))], 101.0))
        for row in leased[:19]
    ]
    calls.append(
        asyncio.ensure_future(store.finish([Retry(leased[19], Attempt(500, 1.0), 500.0)], 101.0))
    )
    await asyncio.sleep(0)
    calls[0].cancel()  # its caller gives up; its outcome is in the shared unit all the same
    await asyncio.gather(*calls, return_exceptions=True)
    assert store.commits == before + 1
    assert rows(store_path(store), "SELECT state, COUNT(*) FROM deliveries GROUP BY state") == [
        (0, 1), (1, 19)
    ]
    counts = (await store.counts())["a"]
    assert (counts.delivered, counts.failed, counts.backlog) == (19, 1, 1)
    assert rows(store_path(store), "SELECT COUNT(*) FROM attempts") == [(20,)]


async def test_a_finish_whose_unit_never_ran_does_not_hold_later_ones(
    store: SqliteStore,
) -> None:
    """The transaction fails before the shared finish unit runs (here its BEGIN): its callers
    get the error, and the next finish starts a unit of its own instead of joining that one."""
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    [row] = await store.lease("a", Kind.SINK, 1, 100.0, 30.0)
    begin = store._q["begin"]
    store._q["begin"] = "BEGIN NOT A STATEMENT"  # the writer's next transaction cannot start
    try:
        with pytest.raises(StoreUnavailable):
            await store.finish([Ack(row, Attempt(200, 1.0))], 101.0)
    finally:
        store._q["begin"] = begin
    await store.finish([Ack(row, Attempt(200, 1.0))], 102.0)
    assert await store.pending() == 0


async def test_each_group_commit_is_timed(db: Path) -> None:
    store = SqliteStore(str(db))
    seen: list[float] = []
    store.on_commit(seen.append)  # before open: handed to the writer it starts
    await store.open()
    try:
        before = store.commits
        await asyncio.gather(*(store.append([routed(f"e{i}", "a")], 100.0, WINDOW)
                               for i in range(3)))  # fmt: skip
        await store.append([routed("e9", "a")], 101.0, WINDOW)
        assert store.commits - before == 2
        assert len(seen) == 2
        assert all(isinstance(s, float) and s > 0 for s in seen)
    finally:
        await store.close()


async def test_a_failing_call_rolls_back_alone_inside_a_shared_commit(store: SqliteStore) -> None:
    before = store.commits
    good, bad = await asyncio.gather(
        store.append([routed("e1", "a")], 100.0, WINDOW),
        store.append([routed("e2", "a"), routed("e3", "a", huge=2**70)], 100.0, WINDOW),
        return_exceptions=True,
    )
    assert good == [False]
    assert isinstance(bad, TypeError)
    assert store.commits == before + 1
    assert rows(store_path(store), "SELECT id FROM events") == [("e1",)]
    assert rows(store_path(store), "SELECT id FROM dedupe") == [("e1",)]
    assert await store.pending() == 1


async def test_close_drains_queued_writes(db: Path) -> None:
    store = SqliteStore(str(db))
    await store.open()
    writes = [
        asyncio.ensure_future(store.append([routed(f"e{i}", "a")], 100.0, WINDOW)) for i in range(5)
    ]
    await asyncio.sleep(0)  # the writes are queued, not yet committed
    await store.close()
    assert [w.result() for w in writes] == [[False]] * 5
    assert rows(db, "SELECT COUNT(*) FROM deliveries") == [(5,)]
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.append([routed("late", "a")], 100.0, WINDOW)


async def test_second_opener_of_the_same_file_fails(store: SqliteStore, db: Path) -> None:
    other = SqliteStore(str(db))
    with pytest.raises(StoreUnavailable, match="in use by another gateway process"):
        await other.open()
    script = (
        "import asyncio, sys\n"
        "from gateway.errors import StoreUnavailable\n"
        "from gateway.store.sqlite import SqliteStore\n"
        "try:\n"
        "    asyncio.run(SqliteStore(sys.argv[1]).open())\n"
        "except StoreUnavailable as exc:\n"
        "    print(exc.detail)\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(db), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    assert "in use by another gateway process" in out.decode()
    await store.close()
    await other.open()  # free again once the owner let go
    await other.close()


async def test_sqlite_errors_become_store_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StoreUnavailable, match="store unavailable") as caught:
        await SqliteStore(str(folder)).open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_attempts_log(store: SqliteStore, db: Path) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    [first] = await store.lease("a", Kind.SINK, 1, 100.0, 30.0)
    await store.finish([Retry(first, Attempt(None, 10_000.0, "timeout"), 110.0)], 101.0)
    [given] = await store.lease("a", Kind.SINK, 1, 110.0, 30.0)
    await store.finish([Retry(given, None, 110.0)], 110.0)  # untried: not logged
    [second] = await store.lease("a", Kind.SINK, 1, 110.0, 30.0)
    await store.finish([Ack(first, Attempt(200, 1.0))], 111.0)  # stale: not logged
    info = DeadLetterInfo("rejected", 400, 2, "https://a.test/")
    await store.finish([Dead(second, Attempt(400, 7.5, "Bad Request"), info)], 112.0)
    assert rows(db, "SELECT delivery_id, attempt, at, status, latency_ms, error FROM attempts") == [
        (first.id, 1, 101.0, None, 10_000.0, "timeout"),
        (first.id, 2, 112.0, 400, 7.5, "Bad Request"),
    ]
    assert rows(db, "SELECT dl_reason, dl_status, dl_attempts, dl_sink FROM deliveries") == [
        ("rejected", 400, 2, "https://a.test/")
    ]


async def test_purge_works_in_chunks(store: SqliteStore, db: Path) -> None:
    count = PURGE_CHUNK * 2 + 10
    await store.append([routed(f"e{i}") for i in range(count)], 100.0, WINDOW)
    before = store.commits
    assert await store.purge(1000.0, 10.0, 10.0) == count
    assert store.commits - before >= 3  # several short transactions, not one long one
    assert rows(db, "SELECT COUNT(*) FROM events") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM dedupe") == [(0,)]


async def test_leasing_stays_on_the_index_with_100k_pending_rows(
    store: SqliteStore, db: Path
) -> None:
    subscriptions = ("a", "b", "c", "d", "e")
    for start in range(0, 20_000, 2_000):
        batch = [routed(f"e{i}", *subscriptions) for i in range(start, start + 2_000)]
        await store.append(batch, float(start), 1e9)
    assert await store.pending() == 100_000

    params = {"subscription": "c", "kind": 0, "now": 1e9, "limit": 100}
    conn = sqlite3.connect(db)
    try:
        plans = [explain(conn, "lease_due", params)]
        conn.execute("ANALYZE")  # with statistics too, as `PRAGMA optimize` would gather
        plans.append(explain(conn, "lease_due", params))
        due = explain(conn, "next_due", params)
    finally:
        conn.close()
    for plan in plans:
        assert "USING INDEX deliveries_due (subscription=? AND kind=? AND due_at<?)" in plan
        assert "TEMP B-TREE" not in plan  # rows come out of the index already in due order
        assert "USING INTEGER PRIMARY KEY" in plan  # the event is fetched by its key
    assert "deliveries_due" in due

    leased = await store.lease("c", Kind.SINK, 100, 1e9, 30.0)
    assert [r.event.id for r in leased] == [f"e{i}" for i in range(100)]
    assert await store.next_due(["c"]) == 0.0


async def test_sqlite_in_memory_database() -> None:
    store = open_store("sqlite://:memory:")
    await store.open()
    try:
        await store.append([routed("e1", "a")], 100.0, WINDOW)
        assert len(await store.lease("a", Kind.SINK, 10, 100.0, 30.0)) == 1
    finally:
        await store.close()


def explain(conn: sqlite3.Connection, name: str, params: dict[str, object]) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + QUERIES[name], params))


def store_path(store: SqliteStore) -> Path:
    return Path(store.path)


@pytest.mark.parametrize(
    ("url", "path", "synchronous"),
    [
        ("sqlite:////var/lib/gw/gateway.db", "/var/lib/gw/gateway.db", "normal"),
        ("sqlite:////var/lib/gw.db?synchronous=full", "/var/lib/gw.db", "full"),
        ("SQLITE:////var/lib/gw.db?synchronous=NORMAL", "/var/lib/gw.db", "normal"),
        ("sqlite:///data/gateway.db", "data/gateway.db", "normal"),
        ("sqlite:////srv/my%20data/gw.db", "/srv/my data/gw.db", "normal"),
        ("sqlite://:memory:", ":memory:", "normal"),
    ],
)
def test_open_store_sqlite_urls(url: str, path: str, synchronous: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert (store.path, store.synchronous) == (path, synchronous)


def test_open_store_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://gw:s3cret@db.internal/gateway?pool_max=0", "pool_max >= 1"),
        ("redis://:s3cret@cache/0", "unknown store URL scheme 'redis'"),
        ("/var/lib/gw.db", "has no scheme"),
        ("sqlite:////var/lib/gw.db?synchronous=off", "synchronous must be one of normal, full"),
        ("sqlite:////var/lib/gw.db?journal=delete", "unknown SQLite option(s): journal"),
        ("sqlite://host/gw.db", "sqlite:///path/to/file.db"),
    ],
)
def test_open_store_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url)
    assert message in caught.value.detail
    assert "s3cret" not in caught.value.detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-- name: one\nSELECT 1;\n", {"one": "SELECT 1;"}),
        (
            "-- header\n\n-- name: a\n-- what a does\nSELECT 1;\n\n-- Section ---\n"
            "-- name: b\nSELECT 2\nFROM t;\n",
            {"a": "-- what a does\nSELECT 1;", "b": "SELECT 2\nFROM t;"},
        ),
    ],
)
def test_parse_queries(text: str, expected: dict[str, str]) -> None:
    assert dict(parse_queries(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "defined twice"),
        ("-- name: a\n-- only a comment\n-- name: b\nSELECT 2;\n", "empty"),
    ],
)
def test_parse_queries_refuses_bad_files(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_queries(text)


async def test_identity_survives_a_reopen(db: Path) -> None:
    first = SqliteStore(str(db))
    await first.open()
    identity = first.identity
    await first.close()
    again = SqliteStore(str(db))
    await again.open()
    try:
        assert again.identity == identity != ""
    finally:
        await again.close()
