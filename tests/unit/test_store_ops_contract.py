"""The operators' part of the `Store` contract (CONTRACT 6), run against every store: counts,
dead letters by filter, replay windows, requeue, one event's history, removed subscriptions,
pause reasons."""

from __future__ import annotations

from gateway.store.base import (
    PAUSED_GONE,
    PAUSED_OPERATOR,
    Ack,
    Attempt,
    Dead,
    DeadLetterInfo,
    Kind,
    PausedOn,
    Retry,
    State,
    Store,
)
from gateway.store.ops import Counts, DeadLetterQuery, ReplicaState
from tests.unit.test_store_contract import LEASE, WINDOW, lease_one, routed, store

__all__ = ["store"]  # the fixture, parametrized over every store

REJECTED = DeadLetterInfo("rejected", 400, 1, "https://sink.test/")


async def test_counts_per_subscription(store: Store) -> None:
    assert await store.counts() == {}
    await store.append([routed("e1", "a", "b"), routed("e2", "a")], 100.0, WINDOW)
    await store.append([routed("e3", "a")], 105.0, WINDOW)
    rows = await store.lease("a", Kind.SINK, 2, 110.0, LEASE)
    await store.finish([Ack(rows[0], Attempt(200, 5.0))], 111.0)
    await store.finish([Retry(rows[1], Attempt(503, 5.0), 120.0)], 111.0)
    b = await lease_one(store, "b", 110.0)
    await store.finish([Dead(b, Attempt(None, 9.0, "connection refused"), REJECTED)], 112.0)
    counts = await store.counts()
    assert counts["a"] == Counts(2, 100.0, 1, 1, 0, "HTTP 503")
    assert counts["b"] == Counts(0, None, 0, 1, 1, "connection refused")


async def test_delivered_and_failed_are_running_tallies(store: Store) -> None:
    # Kept as outcomes are recorded: purging old rows does not lower them; a stale outcome
    # (its lease taken over) and a row given back untried count nothing.
    await store.append([routed("t1", "a"), routed("t2", "a"), routed("t3", "a")], 100.0, WINDOW)
    one, two, three = await store.lease("a", Kind.SINK, 3, 100.0, LEASE)
    await store.finish([Retry(one, Attempt(None, 1.0, "timeout"), 100.0)], 101.0)
    await store.finish([Retry(one, Attempt(500, 1.0), 100.0)], 101.5)  # stale: not counted
    await store.finish([Retry(three, None, 100.0)], 101.0)  # untried: not counted
    await store.finish([Ack(two, Attempt(204, 1.0))], 102.0)
    again = await store.lease("a", Kind.SINK, 3, 103.0, LEASE)
    await store.finish([Ack(row, Attempt(200, 1.0)) for row in again], 104.0)
    assert (await store.counts())["a"] == Counts(0, None, 3, 1, 0, "timeout")
    assert await store.purge(10_000.0, 10.0, WINDOW) == 3
    assert (await store.counts())["a"] == Counts(0, None, 3, 1, 0, "timeout")


async def test_dead_letters_where_filters_and_pages(store: Store) -> None:
    await store.append([routed(f"e{i}", "a", "b") for i in range(4)], 100.0, WINDOW)
    rows = await store.lease("a", Kind.SINK, 10, 100.0, LEASE)
    for i, row in enumerate(rows):
        await store.finish([Dead(row, Attempt(400, 1.0), REJECTED)], 200.0 + i)
    b = await store.lease("b", Kind.SINK, 1, 100.0, LEASE)
    await store.finish([Dead(b[0], Attempt(400, 1.0), REJECTED)], 300.0)

    def ids(found: list[object]) -> list[str]:
        return [d.event.id for d in found]  # type: ignore[attr-defined]

    assert ids(await store.dead_letters_where(DeadLetterQuery())) == ["e0", "e0", "e1", "e2", "e3"]
    only_a = DeadLetterQuery(subscription="a", since=201.0, until=203.0)
    assert ids(await store.dead_letters_where(only_a)) == ["e1", "e2"]
    by_id = DeadLetterQuery(event_ids=("e3", "e0"))
    assert ids(await store.dead_letters_where(by_id)) == ["e0", "e0", "e3"]
    first = await store.dead_letters_where(DeadLetterQuery(subscription="a", limit=2))
    rest = await store.dead_letters_where(
        DeadLetterQuery(subscription="a", after=first[-1].id, limit=10)
    )
    assert ids(first) + ids(rest) == ["e0", "e1", "e2", "e3"]
    assert first[0].reason == "rejected"
    assert first[0].status == 400


async def test_events_between_and_requeue(store: Store) -> None:
    await store.append([routed("e1", "a")], 100.0, WINDOW)
    await store.append([routed("e2", "a"), routed("e3")], 200.0, WINDOW)
    await store.append([routed("e4", "a")], 300.0, WINDOW)
    window = await store.events_between(150.0, 300.0, 0, 10)
    assert [s.event.id for s in window] == ["e2", "e3"]
    assert [s.received_at for s in window] == [200.0, 200.0]
    assert [s.event.id for s in await store.events_between(0.0, 1e9, window[0].seq, 2)] == [
        "e3",
        "e4",
    ]
    first = await lease_one(store, "a", 100.0)
    await store.finish([Ack(first, Attempt(200, 1.0))], 101.0)

    before = await store.pending()
    assert await store.requeue("new", [s.seq for s in window], 400.0) == 2
    assert await store.requeue("new", [999_999], 400.0) == 0
    assert await store.pending() == before + 2
    leased = await store.lease("new", Kind.SINK, 10, 400.0, LEASE)
    assert sorted(row.event.id for row in leased) == ["e2", "e3"]
    assert all(row.attempt == 1 for row in leased)
    # Again for a subscription that had it: a new row, so a new webhook-id.
    all_events = await store.events_between(0.0, 1e9, 0, 10)
    assert await store.requeue("a", [all_events[0].seq], 400.0) == 1
    again = [row for row in await store.lease("a", Kind.SINK, 10, 400.0, LEASE)
             if row.event.id == "e1"]
    assert len(again) == 1
    assert again[0].id != first.id


async def test_recent_attempts_newest_first_per_subscription(store: Store) -> None:
    assert await store.recent_attempts("a", 5) == []
    await store.append([routed("e1", "a", "b"), routed("e2", "a")], 100.0, WINDOW)
    rows = await store.lease("a", Kind.SINK, 2, 100.0, LEASE)
    await store.finish([Retry(rows[0], Attempt(500, 12.0, "boom"), 110.0)], 101.0)
    await store.finish([Ack(rows[1], Attempt(204, 3.0))], 102.0)
    again = await lease_one(store, "a", 110.0)
    await store.finish([Ack(again, Attempt(200, 4.0))], 111.0)
    b = await lease_one(store, "b", 100.0)
    await store.finish([Dead(b, Attempt(400, 1.0), REJECTED)], 103.0)
    found = await store.recent_attempts("a", 5)
    assert [(r.id, r.source, r.tried.attempt, r.tried.status, r.tried.error) for r in found] == [
        ("e1", "/shop", 2, 200, None),
        ("e2", "/shop", 1, 204, None),
        ("e1", "/shop", 1, 500, "boom"),
    ]
    assert [r.tried.at for r in found] == [111.0, 102.0, 101.0]
    assert [r.id for r in await store.recent_attempts("a", 1)] == ["e1"]
    assert [r.tried.status for r in await store.recent_attempts("b", 5)] == [400]


async def test_history_lists_deliveries_and_attempts(store: Store) -> None:
    assert await store.history("/shop", "nope") is None
    await store.append([routed("e1", "a", "b")], 100.0, WINDOW)
    a = await lease_one(store, "a", 100.0)
    await store.finish([Retry(a, Attempt(500, 12.0, "boom"), 110.0)], 101.0)
    a = await lease_one(store, "a", 110.0)
    await store.finish([Ack(a, Attempt(200, 3.0))], 111.0)
    found = await store.history("/shop", "e1")
    assert found is not None
    assert found.stored.event.id == "e1"
    assert found.stored.received_at == 100.0
    by_name = {d.subscription: d for d in found.deliveries}
    assert by_name["a"].state == State.DELIVERED
    assert by_name["b"].state == State.PENDING
    assert [(t.attempt, t.status, t.error) for t in by_name["a"].tries] == [
        (1, 500, "boom"),
        (2, 200, None),
    ]
    assert by_name["b"].tries == ()


async def test_expire_removed_dead_letters_old_rows_of_removed_subscriptions(
    store: Store,
) -> None:
    await store.append([routed("e1", "kept", "gone")], 100.0, WINDOW)
    await store.append([routed("e2", "gone")], 500.0, WINDOW)
    assert await store.expire_removed(["kept"], 600.0, 400.0) == 1  # e1 for "gone" only
    assert await store.pending() == 2
    dead = await store.dead_letters_where(DeadLetterQuery(subscription="gone"))
    assert [(d.event.id, d.reason) for d in dead] == [("e1", "removed")]
    assert (await store.counts())["kept"].backlog == 1


async def test_pause_keeps_its_reason(store: Store) -> None:
    on = PausedOn.of("https://a.test/")
    await store.pause("a", on, PAUSED_OPERATOR, 100.0)
    await store.pause("b", on, PAUSED_GONE, 100.0)
    paused = await store.paused()
    assert paused["a"].reason == PAUSED_OPERATOR
    assert paused["b"].reason == PAUSED_GONE


async def test_replicas_report_what_they_run(store: Store) -> None:
    assert store.replica
    await store.report_replica(ReplicaState("r1", 1, 100.0, None, 110.0))
    await store.report_replica(ReplicaState("r2", 1, 100.0, None, 111.0))
    # a reload on r1: the row is replaced, not added
    await store.report_replica(ReplicaState("r1", 2, 115.0, "reload refused: x", 116.0))
    assert await store.replicas(since=0.0) == [
        ReplicaState("r1", 2, 115.0, "reload refused: x", 116.0),
        ReplicaState("r2", 1, 100.0, None, 111.0),
    ]
    assert [r.replica for r in await store.replicas(since=112.0)] == ["r1"]  # r2 went silent
