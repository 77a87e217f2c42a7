"""The `Store` contract (gateway.store.base), run against every store implementation.

The PostgreSQL store runs when `GATEWAY_TEST_POSTGRES` names a database
(`postgresql://postgres@127.0.0.1:5432/test`); each test gets a schema of its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import asyncpg
import pytest

from gateway.errors import StoreUnavailable
from gateway.event import AttributeValue, DataKind, Event
from gateway.store import open_store
from gateway.store.base import (
    Ack,
    Attempt,
    Dead,
    DeadLetterInfo,
    Handshake,
    Kind,
    Leased,
    NewEvent,
    Opened,
    PausedOn,
    Retry,
    Store,
)
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import SqliteStore

WINDOW = 3600.0
LEASE = 30.0
OK = Attempt(200, 12.5)
FAILED = Attempt(500, 40.0, "Internal Server Error")
GONE = DeadLetterInfo("exhausted", 500, 3, "https://sink.test/hook")


POSTGRES_ENV = "GATEWAY_TEST_POSTGRES"


def postgres_dsn() -> str:
    """The test database's URL; skips the test when none is configured."""
    dsn = os.environ.get(POSTGRES_ENV, "")
    if not dsn:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql://... to run the PostgreSQL store tests")
    return dsn


def with_query(url: str, **params: str | int) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


@contextlib.asynccontextmanager
async def postgres_schema(**params: str | int) -> AsyncIterator[str]:
    """A fresh, uniquely named schema, dropped afterwards; yields a store URL that uses it."""
    dsn = postgres_dsn()
    name = f"gw_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        yield with_query(dsn, search_path=name, **params)
    finally:
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Store]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "memory":
            opened: Store = MemoryStore()
        elif request.param == "sqlite":
            opened = SqliteStore(f"{tmp_path}/gateway.db")
        else:
            opened = open_store(await stack.enter_async_context(postgres_schema(pool_max=4)))
        await opened.open()
        yield opened
        await opened.close()


def event(
    ident: str = "e1",
    source: str = "/shop",
    data: bytes | None = b'{"total": 10}',
    kind: DataKind = DataKind.JSON,
    **extra: AttributeValue,
) -> Event:
    attributes: dict[str, AttributeValue] = {
        "specversion": "1.0",
        "id": ident,
        "source": source,
        "type": "com.example.order.created",
        **extra,
    }
    return Event(attributes, data, kind)


def routed(ident: str, *subscriptions: str, source: str = "/shop") -> NewEvent:
    return NewEvent(event(ident, source), subscriptions)


async def lease_one(store: Store, sub: str, now: float, kind: Kind = Kind.SINK) -> Leased:
    rows = await store.lease(sub, kind, 10, now, LEASE)
    assert len(rows) == 1, rows
    return rows[0]


async def test_append_lease_ack(store: Store) -> None:
    sent = event("e1", flag=True, count=3, traceparent="00-ab-cd-01")
    assert await store.append([NewEvent(sent, ("billing", "audit"))], 100.0, WINDOW) == [False]
    assert await store.pending() == 2

    row = await lease_one(store, "billing", 100.0)
    assert (row.subscription, row.kind, row.attempt, row.received_at) == (
        "billing",
        Kind.SINK,
        1,
        100.0,
    )
    assert row.event == sent
    assert row.event.attributes == sent.attributes  # types kept: bool stays bool, int stays int
    assert row.dead_letter is None

    await store.finish([Ack(row, OK)], 101.0)
    assert await store.pending() == 1
    assert await store.lease("billing", Kind.SINK, 10, 10_000.0, LEASE) == []
    assert len(await store.lease("audit", Kind.SINK, 10, 101.0, LEASE)) == 1


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (None, DataKind.NONE),
        (b"", DataKind.BINARY),
        (b"\x00\xff\x10binary", DataKind.BINARY),
        ("grüße".encode(), DataKind.TEXT),
        (b'{"a": [1, 2.50, "x"]}', DataKind.JSON),
    ],
)
async def test_event_data_comes_back_byte_for_byte(
    store: Store, data: bytes | None, kind: DataKind
) -> None:
    sent = event("e1", data=data, kind=kind)
    await store.append([NewEvent(sent, ("a",))], 100.0, WINDOW)
    row = await lease_one(store, "a", 100.0)
    assert (row.event.data, row.event.kind) == (data, kind)


async def test_lease_honours_limit_and_due_order(store: Store) -> None:
    # Due time is the append time; equal due times go by insertion order.
    await store.append([routed("late", "a")], 30.0, WINDOW)
    await store.append([routed("early", "a")], 10.0, WINDOW)
    await store.append([routed("mid1", "a"), routed("mid2", "a")], 20.0, WINDOW)

    first = await store.lease("a", Kind.SINK, 2, 100.0, LEASE)
    assert [r.event.id for r in first] == ["early", "mid1"]
    rest = await store.lease("a", Kind.SINK, 10, 100.0, LEASE)
    assert [r.event.id for r in rest] == ["mid2", "late"]
    assert await store.lease("a", Kind.SINK, 0, 100.0, LEASE) == []


async def test_rows_not_yet_due_are_not_leased(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    assert await store.lease("a", Kind.SINK, 10, 99.0, LEASE) == []
    assert await store.lease("b", Kind.SINK, 10, 100.0, LEASE) == []
    assert await store.lease("a", Kind.DEAD_LETTER, 10, 100.0, LEASE) == []
    assert len(await store.lease("a", Kind.SINK, 10, 100.0, LEASE)) == 1


async def test_leased_row_comes_back_only_after_its_lease_expires(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    first = await lease_one(store, "a", 100.0)
    assert await store.lease("a", Kind.SINK, 10, 100.0 + LEASE - 1, LEASE) == []
    again = await lease_one(store, "a", 100.0 + LEASE)
    assert (again.id, again.attempt) == (first.id, 2)
    assert again.lease != first.lease


async def test_finish_with_a_stale_lease_is_ignored(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    stale = await lease_one(store, "a", 100.0)
    current = await lease_one(store, "a", 200.0)

    await store.finish([Ack(stale, OK)], 201.0)
    assert await store.pending() == 1
    await store.finish([Dead(stale, FAILED, GONE, notify_sink=True)], 201.0)
    assert await store.pending() == 1
    assert await store.dead_letters(None, 10) == []

    await store.finish([Ack(current, OK)], 202.0)
    assert await store.pending() == 0
    await store.finish([Retry(current, FAILED, 300.0)], 203.0)  # the row has ended
    assert await store.pending() == 0


async def test_retry_sets_the_next_due_time(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    row = await lease_one(store, "a", 100.0)
    await store.finish([Retry(row, FAILED, 500.0)], 101.0)
    assert await store.next_due(["a"]) == 500.0
    assert await store.lease("a", Kind.SINK, 10, 499.0, LEASE) == []
    again = await lease_one(store, "a", 500.0)
    assert again.attempt == 2


async def test_untried_retry_does_not_count_the_attempt(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    row = await lease_one(store, "a", 100.0)
    await store.finish([Retry(row, None, 100.0)], 100.0)
    again = await lease_one(store, "a", 100.0)
    assert again.attempt == 1


async def test_dead_with_notify_queues_a_dead_letter_row(store: Store) -> None:
    sent = event("e1", subject="eu")
    await store.append([NewEvent(sent, ("a",))], 100.0, WINDOW)
    row = await lease_one(store, "a", 100.0)
    await store.finish([Dead(row, FAILED, GONE, notify_sink=True)], 150.0)
    assert await store.pending() == 1
    assert await store.lease("a", Kind.SINK, 10, 10_000.0, LEASE) == []

    notice = await lease_one(store, "a", 150.0, Kind.DEAD_LETTER)
    assert (notice.kind, notice.attempt, notice.event) == (Kind.DEAD_LETTER, 1, sent)
    assert notice.dead_letter == GONE
    assert notice.id != row.id

    # A dead notice does not spawn another one.
    await store.finish([Dead(notice, FAILED, GONE, notify_sink=True)], 160.0)
    assert await store.pending() == 0
    assert await store.lease("a", Kind.DEAD_LETTER, 10, 10_000.0, LEASE) == []


async def test_dead_without_notify_queues_nothing(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    row = await lease_one(store, "a", 100.0)
    await store.finish([Dead(row, FAILED, GONE)], 150.0)
    assert await store.pending() == 0
    assert await store.lease("a", Kind.DEAD_LETTER, 10, 10_000.0, LEASE) == []
    [listed] = await store.dead_letters("a", 10)
    assert (listed.id, listed.reason, listed.status, listed.attempts) == (
        row.id,
        "exhausted",
        500,
        3,
    )


async def test_the_publishing_producer_is_recorded(store: Store) -> None:
    await store.append([NewEvent(event("e1"), ("a",), producer="shop"), routed("e2", "a")],
                       100.0, WINDOW)
    rows = await store.lease("a", Kind.SINK, 10, 100.0, LEASE)
    await store.finish([Dead(row, FAILED, GONE) for row in rows], 150.0)
    listed = {d.event.id: d.producer for d in await store.dead_letters("a", 10)}
    assert listed == {"e1": "shop", "e2": None}


@pytest.mark.parametrize(
    ("first", "second", "window", "duplicate"),
    [
        (100.0, 100.0, 60.0, True),  # same instant
        (100.0, 159.0, 60.0, True),  # within the window
        (100.0, 160.0, 60.0, False),  # exactly one window later: expired
        (100.0, 500.0, 60.0, False),  # long after
    ],
)
async def test_dedupe_window(
    store: Store, first: float, second: float, window: float, duplicate: bool
) -> None:
    assert await store.append([routed("e1", "a")], first, window) == [False]
    assert await store.append([routed("e1", "a")], second, window) == [duplicate]
    assert await store.pending() == (1 if duplicate else 2)


async def test_dedupe_window_counts_from_the_first_sighting(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, 60.0)
    assert await store.append([routed("e1", "a")], 150.0, 60.0) == [True]
    assert await store.append([routed("e1", "a")], 165.0, 60.0) == [False]
    assert await store.append([routed("e1", "a")], 200.0, 60.0) == [True]


async def test_dedupe_key_is_source_and_id(store: Store) -> None:
    batch = [
        routed("e1", "a"),
        routed("e1", "a", source="/other"),
        routed("e2", "a"),
        routed("e1", "a"),  # repeated inside one batch
    ]
    assert await store.append(batch, 100.0, WINDOW) == [False, False, False, True]
    assert await store.pending() == 3


async def test_appended_counts_the_delivery_rows_appends_made(store: Store) -> None:
    """What the dispatcher reads to see the backlog grow (gateway.delivery.pressure)."""
    assert store.appended == 0
    await store.append([routed("a1", "billing", "audit"), routed("a2", "billing")], 100.0, WINDOW)
    assert store.appended == 3
    await store.append([routed("a1", "billing", "audit"), routed("a3")], 101.0, WINDOW)
    assert store.appended == 3  # a duplicate makes no row, nor an event nobody takes


async def test_append_is_all_or_nothing(store: Store) -> None:
    good = routed("e1", "a")
    bad = NewEvent(event("e2", huge=2**70), ("a",))  # not representable in the JSON it is kept as
    with pytest.raises(TypeError):
        await store.append([good, bad], 100.0, WINDOW)
    assert await store.pending() == 0
    assert await store.lease("a", Kind.SINK, 10, 100.0, LEASE) == []
    assert await store.append([good], 101.0, WINDOW) == [False]  # no dedupe key was left behind


async def test_pause_resume_paused(store: Store) -> None:
    assert await store.paused() == {}
    old, b = PausedOn.of("https://a.test/old"), PausedOn.of("https://b.test/")
    new = PausedOn.of("https://u:pw-s3cret@a.test/new?token=s3cret")
    await store.pause("a", old, "410 Gone", 100.0)
    await store.pause("b", b, "410 Gone", 100.0)
    await store.pause("a", new, "410 Gone", 110.0)
    assert await store.paused() == {"a": new, "b": b}
    assert new.sink == "https://u:***@a.test/new?token=***"
    await store.resume("a")
    await store.resume("never-paused")
    assert await store.paused() == {"b": b}


async def test_dead_letters_and_redeliver(store: Store) -> None:
    await store.append([routed("e1", "a", "b"), routed("e2", "a")], 100.0, WINDOW)
    rows = await store.lease("a", Kind.SINK, 10, 100.0, LEASE)
    await store.finish([Dead(rows[0], FAILED, GONE)], 110.0)
    await store.finish(
        [Dead(rows[1], Attempt(400, 5.0), DeadLetterInfo("rejected", 400, 1, "s"))], 120.0
    )
    b_row = await lease_one(store, "b", 100.0)
    await store.finish([Dead(b_row, None, DeadLetterInfo("expired", None, 0, "s"))], 130.0)

    assert [d.event.id for d in await store.dead_letters(None, 10)] == ["e1", "e2", "e1"]
    assert [d.subscription for d in await store.dead_letters(None, 10)] == ["b", "a", "a"]
    listed = await store.dead_letters("a", 1)
    assert [(d.id, d.reason, d.status, d.updated_at) for d in listed] == [
        (rows[1].id, "rejected", 400, 120.0)
    ]

    assert await store.pending() == 0
    assert await store.redeliver(rows[1].id, 200.0) is True
    assert await store.pending() == 1
    assert [d.id for d in await store.dead_letters("a", 10)] == [rows[0].id]
    again = await lease_one(store, "a", 200.0)
    assert (again.id, again.attempt, again.event.id) == (rows[1].id, 1, "e2")

    assert await store.redeliver(rows[1].id, 200.0) is False  # not dead any more
    assert await store.redeliver(999_999, 200.0) is False


async def test_redeliver_refuses_dead_letter_notices(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    row = await lease_one(store, "a", 100.0)
    await store.finish([Dead(row, FAILED, GONE, notify_sink=True)], 110.0)
    notice = await lease_one(store, "a", 110.0, Kind.DEAD_LETTER)
    await store.finish([Dead(notice, FAILED, GONE)], 120.0)
    assert await store.redeliver(notice.id, 130.0) is False
    assert await store.redeliver(row.id, 130.0) is True


async def test_purge_respects_retention_and_keeps_pending(store: Store) -> None:
    await store.append(
        [routed("done", "a"), routed("waiting", "b"), routed("unrouted"), routed("dead", "c")],
        100.0,
        WINDOW,
    )
    await store.append([routed("recent", "a")], 900.0, WINDOW)
    for row in await store.lease("a", Kind.SINK, 10, 900.0, LEASE):
        await store.finish([Ack(row, OK)], 100.0 if row.event.id == "done" else 900.0)
    dead = await lease_one(store, "c", 100.0)
    await store.finish([Dead(dead, FAILED, GONE, notify_sink=True)], 100.0)  # its notice waits

    assert await store.purge(1000.0, 500.0, WINDOW) == 2  # "done" and "unrouted"
    assert await store.pending() == 2
    assert [r.event.id for r in await store.lease("b", Kind.SINK, 10, 1000.0, LEASE)] == ["waiting"]
    notice = await lease_one(store, "c", 1000.0, Kind.DEAD_LETTER)
    assert [d.event.id for d in await store.dead_letters("c", 10)] == ["dead"]

    await store.finish([Ack(notice, OK)], 1000.0)
    assert await store.purge(1600.0, 550.0, WINDOW) == 2  # "dead" and "recent" ended long ago
    assert await store.dead_letters(None, 10) == []
    assert await store.purge(1600.0, 550.0, WINDOW) == 0
    assert await store.pending() == 1  # "waiting" is still there


async def test_purge_expires_dedupe_keys(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, 10_000.0)
    assert await store.append([routed("e1", "a")], 200.0, 10_000.0) == [True]
    await store.purge(200.0, 10_000.0, 50.0)  # the key is older than this window: expired
    assert await store.append([routed("e1", "a")], 201.0, 10_000.0) == [False]


async def test_delivery_ids_are_never_reused(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    first = await lease_one(store, "a", 100.0)
    await store.finish([Ack(first, OK)], 100.0)
    assert await store.purge(1000.0, 10.0, 10.0) == 1
    await store.append([routed("e2", "a")], 1000.0, WINDOW)
    second = await lease_one(store, "a", 1000.0)
    assert second.id > first.id


async def test_pending_counts_every_path(store: Store) -> None:
    await store.append([routed("e1", "a", "b"), routed("e2", "a", "a")], 100.0, WINDOW)
    assert await store.pending() == 3  # a subscription listed twice gets one row
    a1, a2 = await store.lease("a", Kind.SINK, 10, 100.0, LEASE)
    assert await store.pending() == 3  # leased rows are still pending
    await store.finish([Ack(a1, OK), Dead(a2, FAILED, GONE, notify_sink=True)], 101.0)
    assert await store.pending() == 2
    assert await store.redeliver(a2.id, 102.0)
    assert await store.pending() == 3


async def test_next_due(store: Store) -> None:
    assert await store.next_due(["a"]) is None
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    await store.append([routed("e2", "b")], 50.0, WINDOW)
    await store.append([routed("e3", "c")], 10.0, WINDOW)
    assert await store.next_due(["a", "b"]) == 50.0
    assert await store.next_due([]) is None
    row = await lease_one(store, "b", 60.0)
    assert await store.next_due(["a", "b"]) == 60.0 + LEASE
    await store.finish([Dead(row, FAILED, GONE, notify_sink=True)], 70.0)
    assert await store.next_due(["b"]) == 70.0  # the dead-letter notice is due now
    assert await store.next_due(["a"]) == 100.0


async def test_a_closed_store_is_unavailable(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.append([routed("e1", "a")], 100.0, WINDOW)



# -- identity (webhook-ids unique across databases) --------------------------------------------


async def test_identity_is_random_per_database(store: Store, tmp_path: object) -> None:
    other = SqliteStore(f"{tmp_path}/other.db")
    await other.open()
    try:
        assert len(store.identity) == 16
        int(store.identity, 16)
        assert store.identity != other.identity
    finally:
        await other.close()


async def test_appends_that_make_rows_due_wake_the_listener(store: Store) -> None:
    woken: list[int] = []
    store.on_wakeup(lambda: woken.append(1))
    await store.append([routed("w1", "a")], 100.0, WINDOW)
    assert woken, "an append that made a row due must wake whoever listens"
    woken.clear()
    await store.append([routed("w1", "a")], 101.0, WINDOW)  # a duplicate: nothing new is due
    assert not woken


async def test_breakers_open_claim_probe_close(store: Store) -> None:
    assert await store.breakers() == {}
    opened = Opened(100.0, 30.0, "HTTP 503")
    await store.open_breaker("a", opened, 70.0)
    assert await store.breakers() == {"a": opened}
    # Before `until` no probe may be claimed; at it, one holder wins and pushes `until` ahead.
    assert not await store.claim_probe("a", Opened(150.0, 30.0, "x"), 99.0)
    assert await store.claim_probe("a", Opened(150.0, 30.0, "x"), 100.0)
    assert not await store.claim_probe("a", Opened(160.0, 30.0, "x"), 100.0)
    assert await store.breakers() == {"a": Opened(150.0, 30.0, "HTTP 503")}
    reopened = Opened(220.0, 60.0, "timeout")
    await store.open_breaker("a", reopened, 160.0)
    assert await store.breakers() == {"a": reopened}
    # A claim without a stored row (its opening was never stored) takes the probe.
    assert await store.claim_probe("b", Opened(10.0, 30.0, "HTTP 500"), 5.0)
    await store.close_breaker("a")
    await store.close_breaker("never-opened")
    assert await store.breakers() == {"b": Opened(10.0, 30.0, "HTTP 500")}


async def test_a_stored_open_breaker_holds_sink_rows_at_lease(store: Store) -> None:
    # Another replica's breaker holds this one's leases before it has read the breakers table.
    await store.append([routed("b1", "a", "z")], 100.0, WINDOW)
    await store.open_breaker("a", Opened(200.0, 30.0, "HTTP 503"), 100.0)
    assert await store.lease("a", Kind.SINK, 10, 150.0, LEASE) == []
    assert (await lease_one(store, "z", 150.0)).event.attributes["id"] == "b1"
    # Once the cooldown has passed, a probe can be leased.
    assert (await lease_one(store, "a", 200.0)).event.attributes["id"] == "b1"


async def test_take_tokens_is_a_token_bucket(store: Store) -> None:
    assert await store.take_tokens("a", 10.0, 10.0, 4, 100.0) == 4  # full at first
    assert await store.take_tokens("a", 10.0, 10.0, 10, 100.0) == 6
    assert await store.take_tokens("a", 10.0, 10.0, 10, 100.0) == 0
    assert await store.take_tokens("b", 10.0, 10.0, 3, 100.0) == 3  # a bucket per subscription
    assert await store.take_tokens("a", 10.0, 10.0, 10, 100.25) == 2  # 2.5 refilled
    assert await store.take_tokens("a", 10.0, 10.0, 10, 100.375) == 1  # the half kept, + 1.25
    assert await store.take_tokens("a", 10.0, 10.0, 99, 500.0) == 10  # capped at capacity


async def test_handshakes_are_saved_and_replaced(store: Store) -> None:
    assert await store.handshakes() == {}
    consented = Handshake("fp-1", "gw.example.com", 1.0, None, 100.0)
    await store.save_handshake("a", consented)
    unlimited = Handshake("fp-2", "gw.example.com", None, None, 101.0)
    await store.save_handshake("b", unlimited)
    assert await store.handshakes() == {"a": consented, "b": unlimited}
    # The latest one wins, a refusal included (its reason is kept for operators).
    refused = Handshake("fp-3", "gw.example.com", None, "HTTP 405", 102.0)
    await store.save_handshake("a", refused)
    assert await store.handshakes() == {"a": refused, "b": unlimited}


async def test_handshakes_survive_a_restart_and_are_shared(tmp_path: object) -> None:
    """A consented handshake is not repeated after a restart (SQLite) nor by another replica
    (PostgreSQL: two stores on one schema)."""
    made = Handshake("fp", "gw.example.com", 0.5, None, 100.0)
    first = SqliteStore(f"{tmp_path}/gateway.db")
    await first.open()
    await first.save_handshake("a", made)
    await first.close()
    again = SqliteStore(f"{tmp_path}/gateway.db")
    await again.open()
    assert await again.handshakes() == {"a": made}
    await again.close()
    async with postgres_schema(pool_max=2) as url:
        one, two = open_store(url), open_store(url)
        await one.open()
        await two.open()
        try:
            await one.save_handshake("a", made)
            assert await two.handshakes() == {"a": made}
        finally:
            await one.close()
            await two.close()
