"""The in-memory store: the `Store` semantics with plain dicts and no I/O, for unit tests.

It passes the same contract suite as the SQLite store. Attributes are kept as their JSON
serialization, as the SQL stores keep them, so an event that a SQL store could not store fails
here too, and callers never share mutable state with the store.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import orjson

from gateway.errors import StoreUnavailable
from gateway.event import DataKind, Event
from gateway.store.base import (
    Ack,
    Attempt,
    Dead,
    DeadLetter,
    DeadLetterInfo,
    Handoff,
    Handshake,
    Kind,
    Leased,
    NewEvent,
    Opened,
    Outcome,
    PausedOn,
    Retry,
    State,
    stored_event,
)
from gateway.store.buckets import Buckets
from gateway.store.memory_batch import MemoryBatches
from gateway.store.memory_ops import MemoryOps
from gateway.store.memory_order import MemoryOrdering
from gateway.store.ops import ReplicaState
from gateway.store.tallies import Tallies

REPLICA = socket.gethostname()  # one process owns the store: its identity is the host's

@dataclass(frozen=True, slots=True)
class _Stored:
    source: str
    id: str
    attrs: bytes
    data: bytes | None
    kind: DataKind
    received_at: float
    producer: str | None = None

    def event(self) -> Event:
        return stored_event(self.attrs, self.data, self.kind)


@dataclass(frozen=True, slots=True)
class _Row:
    """One delivery row, the same columns as the SQL `deliveries` table."""

    id: int
    event_seq: int
    subscription: str
    kind: Kind
    due_at: float
    created_at: float
    updated_at: float
    state: State = State.PENDING
    attempts: int = 0
    lease: int | None = None
    ordering_key: str | None = None
    replica: str | None = None  # who holds the lease (migration 3 of the SQL stores)
    last_status: int | None = None
    last_error: str | None = None
    dead: DeadLetterInfo | None = None
    finished_at: float | None = None
    batch: int | None = None  # batch delivery: its group (migration 8 of the SQL stores)

    def key(self) -> tuple[str, Kind, str | None]:
        """What per-key ordering (CONTRACT 5) orders within."""
        return (self.subscription, self.kind, self.ordering_key)


@dataclass(frozen=True, slots=True)
class LoggedAttempt:
    """One entry of the attempts log."""

    delivery_id: int
    attempt: int
    at: float
    result: Attempt


class MemoryStore(MemoryOps, MemoryBatches, MemoryOrdering):
    """`Store` in dicts. `attempts` is the attempts log, for tests to read."""

    def __init__(self) -> None:
        self.attempts: list[LoggedAttempt] = []
        self._events: dict[int, _Stored] = {}
        self._rows: dict[int, _Row] = {}
        self._dedupe: dict[tuple[str, str], float] = {}
        self._paused: dict[str, PausedOn] = {}
        self._breakers: dict[str, Opened] = {}
        self._tallies = Tallies()  # delivered and failed attempts (gateway.store.tallies)
        self._buckets = Buckets()
        self._seqs = itertools.count(1)
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._open = False
        self._identity = secrets.token_hex(8)
        self._replicas: dict[str, ReplicaState] = {}
        self._handshakes: dict[str, Handshake] = {}  # CONTRACT 5, `handshake: true`
        self._wakeup: Callable[[], None] = lambda: None
        self.appended = 0
        self._handoff: Handoff | None = None

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def replica(self) -> str:
        return REPLICA

    async def open(self) -> None:
        now = time.time()
        for row in list(self._rows.values()):
            if row.state is State.PENDING and row.lease is not None:
                self._put(
                    row, lease=None, replica=None, due_at=min(row.due_at, now), updated_at=now
                )
        self._open = True

    async def close(self) -> None:
        self._open = False

    def on_wakeup(self, callback: Callable[[], None]) -> None:
        """One process owns this store: only its own appends make rows due."""
        self._wakeup = callback

    def on_commit(self, observe: Callable[[float], None]) -> None:
        """Nothing is committed: dicts change in place."""

    async def ping(self) -> None:
        self._check()

    async def ready(self) -> None:
        await self.ping()

    def _check(self) -> None:
        if not self._open:
            raise StoreUnavailable("store unavailable: the store is closed")

    def _put(self, row: _Row, **changes: object) -> _Row:
        new = replace(row, **changes)  # type: ignore[arg-type]
        self._rows[new.id] = new
        return new

    async def append(
        self, batch: Sequence[NewEvent], now: float, dedupe_window: float
    ) -> list[bool]:
        self._check()
        # Everything is staged first so that a failing event leaves no trace (all or nothing).
        seen: dict[tuple[str, str], float] = {}
        events: dict[int, _Stored] = {}
        rows: list[_Row] = []
        duplicates: list[bool] = []
        taken: list[Leased] = []
        handoff = self._handoff
        try:
            for item in batch:
                event = item.event
                key = (event.source, event.id)
                last = seen.get(key, self._dedupe.get(key))
                if last is not None and last > now - dedupe_window:
                    duplicates.append(True)
                    continue
                attrs = orjson.dumps(event.attributes)
                seq = next(self._seqs)
                seen[key] = now
                events[seq] = _Stored(
                    event.source, event.id, attrs, event.data, event.kind, now, item.producer
                )
                for name, ordering_key in item.rows().items():
                    row = _Row(next(self._ids), seq, name, Kind.SINK, now, now, now,
                               ordering_key=ordering_key)  # fmt: skip
                    # Handoff: an unordered row the dispatcher has a slot for, leased at once.
                    until = None
                    if handoff is not None and ordering_key is None:
                        until = handoff.take(name, now)
                    if until is not None:
                        token = next(self._tokens)
                        row = replace(row, attempts=1, lease=token, replica=REPLICA, due_at=until)
                        kept = Event(event.attributes, event.data, event.kind)
                        taken.append(Leased(row.id, name, Kind.SINK, 1, token, kept, now))
                    rows.append(row)
                duplicates.append(False)
        except BaseException:
            if handoff is not None and taken:
                handoff.dropped([row.subscription for row in taken])
            raise
        self._dedupe.update(seen)
        self._events.update(events)
        self._rows.update((row.id, row) for row in rows)
        if handoff is not None and taken:
            handoff.taken(taken)
        self.appended += len(rows)
        if len(rows) > len(taken):
            self._wakeup()
        return duplicates

    def hand_off(self, handoff: Handoff | None) -> None:
        self._handoff = handoff

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        self._check()
        held = self._breakers.get(subscription)
        if kind == Kind.SINK and held is not None and held.until > now:
            return []  # a stored open breaker holds SINK rows (as the SQL stores do)
        pending = [
            row
            for row in self._rows.values()
            if row.subscription == subscription and row.kind == kind and row.state is State.PENDING
        ]
        due = sorted(
            (row.due_at, row.id) for row in self._leasable(pending) if row.due_at <= now
        )[: max(limit, 0)]
        token = next(self._tokens)
        leased: list[Leased] = []
        for _, ident in due:
            row = self._mark(self._rows[ident], token, now, lease_for)
            leased.append(self._leased(row, token))
            if row.ordering_key is not None:  # the rows behind it wait for the lease to end
                self._park(row, now + lease_for, now)
        return leased

    def _mark(self, row: _Row, token: int, now: float, lease_for: float, **more: object) -> _Row:
        """Count the attempt a lease makes and push the row's due time to the lease's end."""
        return self._put(
            row, attempts=row.attempts + 1, lease=token, replica=REPLICA,
            due_at=now + lease_for, updated_at=now, **more,
        )  # fmt: skip

    def _leased(self, row: _Row, token: int) -> Leased:
        stored = self._events[row.event_seq]
        return Leased(
            id=row.id,
            subscription=row.subscription,
            kind=row.kind,
            attempt=row.attempts,
            lease=token,
            event=stored.event(),
            received_at=stored.received_at,
            dead_letter=row.dead if row.kind is Kind.DEAD_LETTER else None,
            ordering_key=row.ordering_key,
            batch=row.batch,
        )

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> None:
        self._check()
        for outcome in outcomes:
            self._apply(outcome, now)

    def _apply(self, outcome: Outcome, now: float) -> None:
        leased, attempt = outcome.delivery, outcome.attempt
        row = self._rows.get(leased.id)
        if row is None or row.state is not State.PENDING or row.lease != leased.lease:
            return  # a stale lease: a newer holder owns the row, or it has ended
        common: dict[str, object] = {"lease": None, "updated_at": now}
        if attempt is None:
            common["attempts"] = row.attempts - 1  # given back untried
        else:
            common.update(last_status=attempt.status, last_error=attempt.error)
        if isinstance(outcome, Ack):
            self._put(row, state=State.DELIVERED, finished_at=now, **common)
        elif isinstance(outcome, Retry):
            self._put(row, due_at=outcome.due_at, **common)
            if row.ordering_key is not None:  # CONTRACT 5: the key waits for the retry
                self._park(row, outcome.due_at, outcome.due_at)
        else:
            self._kill(row, outcome, now, common)
        if row.ordering_key is not None and not isinstance(outcome, Retry):
            self._unpark_next(row, now)
        self._tallies.add(outcome, now)
        if attempt is not None:
            self.attempts.append(LoggedAttempt(row.id, leased.attempt, now, attempt))

    def _kill(self, row: _Row, outcome: Dead, now: float, common: dict[str, object]) -> None:
        self._put(row, state=State.DEAD, finished_at=now, dead=outcome.info, **common)
        if outcome.notify_sink and row.kind is Kind.SINK:
            notice = _Row(
                next(self._ids),
                row.event_seq,
                row.subscription,
                Kind.DEAD_LETTER,
                now,
                now,
                now,
                dead=outcome.info,  # notices are never ordered
            )
            self._rows[notice.id] = notice

    async def next_due(self, subscriptions: Sequence[str]) -> float | None:
        self._check()
        names = set(subscriptions)
        pending = [
            row
            for row in self._rows.values()
            if row.state is State.PENDING and row.subscription in names
        ]
        due = [row.due_at for row in self._leasable(pending)]
        return min(due) if due else None

    async def pending(self) -> int:
        self._check()
        return sum(1 for row in self._rows.values() if row.state is State.PENDING)

    async def pause(self, subscription: str, sink: PausedOn, reason: str, now: float) -> None:
        self._check()
        self._paused[subscription] = replace(sink, reason=reason)

    async def resume(self, subscription: str) -> None:
        self._check()
        self._paused.pop(subscription, None)

    async def paused(self) -> Mapping[str, PausedOn]:
        self._check()
        return dict(sorted(self._paused.items()))

    async def breakers(self) -> Mapping[str, Opened]:
        self._check()
        return dict(sorted(self._breakers.items()))

    async def open_breaker(self, subscription: str, opened: Opened, now: float) -> None:
        self._check()
        self._breakers[subscription] = opened

    async def claim_probe(self, subscription: str, opened: Opened, now: float) -> bool:
        self._check()
        held = self._breakers.get(subscription)
        if held is not None and held.until > now:
            return False
        self._breakers[subscription] = (
            opened if held is None else replace(held, until=opened.until)
        )
        return True

    async def close_breaker(self, subscription: str) -> None:
        self._check()
        self._breakers.pop(subscription, None)

    async def take_tokens(
        self, subscription: str, rate: float, capacity: float, want: int, now: float
    ) -> int:
        """One process owns this store: its buckets live in the process."""
        return self._buckets.take(subscription, rate, want, now)

    async def dead_letters(self, subscription: str | None, limit: int) -> list[DeadLetter]:
        self._check()
        dead = sorted(
            (
                row
                for row in self._rows.values()
                if row.state is State.DEAD
                and row.kind is Kind.SINK
                and subscription in (None, row.subscription)
            ),
            key=lambda row: (row.updated_at, row.id),
            reverse=True,
        )[: max(limit, 0)]
        return [
            DeadLetter(
                id=row.id,
                subscription=row.subscription,
                event=self._events[row.event_seq].event(),
                reason=row.dead.reason if row.dead else None,
                status=row.dead.status if row.dead else None,
                attempts=row.dead.attempts if row.dead else row.attempts,
                updated_at=row.updated_at,
                producer=self._events[row.event_seq].producer,
            )
            for row in dead
        ]

    async def redeliver(self, delivery_id: int, now: float) -> bool:
        self._check()
        row = self._rows.get(delivery_id)
        if row is None or row.state is not State.DEAD or row.kind is not Kind.SINK:
            return False
        self._put(
            row,
            state=State.PENDING,
            due_at=now,
            lease=None,
            attempts=0,
            finished_at=None,
            updated_at=now,
            dead=None,
            batch=None,  # batch delivery: a redelivered row joins a new batch
        )
        return True

    async def purge(self, now: float, retention: float, dedupe_window: float) -> int:
        self._check()
        cutoff = now - retention
        held: set[int] = set()
        by_event: dict[int, list[int]] = {}
        for row in self._rows.values():
            by_event.setdefault(row.event_seq, []).append(row.id)
            ended = row.finished_at
            if row.state is State.PENDING or (ended is not None and ended >= cutoff):
                held.add(row.event_seq)
        doomed = [
            seq
            for seq, stored in self._events.items()
            if stored.received_at < cutoff and seq not in held
        ]
        removed: set[int] = set()
        for seq in doomed:
            del self._events[seq]
            for ident in by_event.get(seq, ()):
                del self._rows[ident]
                removed.add(ident)
        self.attempts = [entry for entry in self.attempts if entry.delivery_id not in removed]
        for key, seen in list(self._dedupe.items()):
            if seen <= now - dedupe_window:
                del self._dedupe[key]
        return len(doomed)
