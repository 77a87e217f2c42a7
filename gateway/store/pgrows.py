"""Values of the PostgreSQL store as the column arrays its merged statements take, and back.

The merged statements (`append`, `finish` in queries/postgres.sql) take one array per column, so
that the work of every call in a group commit travels in one round trip. Encoding happens in
the caller, before anything is queued: an event that cannot be stored fails its own call only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from gateway.store.base import (
    Ack,
    DeadLetter,
    DeadLetterInfo,
    Kind,
    Leased,
    NewEvent,
    Outcome,
    Retry,
    stored_event,
)
from gateway.store.pgapi import Record

# The `action` column of the finish statement.
ACK, RETRY, DEAD = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Stored:
    """An event as its row holds it, and the subscriptions it was routed to."""

    source: str
    id: str
    type: str
    attrs: bytes
    data: bytes | None
    kind: int
    producer: str | None
    subscriptions: tuple[str, ...]
    ordering_keys: tuple[str | None, ...] | None  # per subscription; None: none is ordered

    @classmethod
    def of(cls, item: NewEvent) -> Stored:
        event = item.event
        rows = item.rows()
        keys = tuple(rows.values()) if item.ordering_keys is not None else None
        return cls(
            source=event.source,
            id=event.id,
            type=event.type,
            attrs=orjson.dumps(event.attributes),  # raises TypeError on what JSON cannot hold
            data=event.data,
            kind=int(event.kind),
            producer=item.producer,
            subscriptions=tuple(rows),
            ordering_keys=keys,
        )


@dataclass(frozen=True, slots=True)
class AppendCall:
    """The events of one `append` call."""

    events: tuple[Stored, ...]
    now: float
    window: float


@dataclass(frozen=True, slots=True)
class FinishCall:
    """The outcomes of one `finish` call."""

    outcomes: tuple[Outcome, ...]
    now: float


Slot = tuple[int, int]  # (call, event within the call)


def rounds(calls: Sequence[AppendCall]) -> list[tuple[float, list[Slot]]]:
    """Split appends into statements in which no (source, id) repeats (the statement could not
    claim one key twice), keeping repeats in call order; one window per statement."""
    seen: Counter[tuple[str, str]] = Counter()
    by_round: dict[tuple[int, float], list[Slot]] = {}
    for c, call in enumerate(calls):
        for e, event in enumerate(call.events):
            key = (event.source, event.id)
            by_round.setdefault((seen[key], call.window), []).append((c, e))
            seen[key] += 1
    return [(window, slots) for (_, window), slots in sorted(by_round.items())]


def append_args(calls: Sequence[AppendCall], slots: Sequence[Slot]) -> list[list[object]]:
    """The arrays $2..$13 of the append statement; the ordinal of an event is its index."""
    columns: list[list[object]] = [[] for _ in range(12)]
    (ordinal, now, source, ident, type_, attrs, data, kind, producer, row_event, row_sub,
     row_key) = columns
    for index, (c, e) in enumerate(slots):
        event = calls[c].events[e]
        for column, value in (
            (ordinal, index), (now, calls[c].now), (source, event.source), (ident, event.id),
            (type_, event.type), (attrs, event.attrs), (data, event.data),
            (kind, event.kind), (producer, event.producer),
        ):
            column.append(value)
        keys = event.ordering_keys or (None,) * len(event.subscriptions)
        for name, key in zip(event.subscriptions, keys, strict=True):
            row_event.append(index)
            row_sub.append(name)
            row_key.append(key)
    return columns


def ordered_keys(calls: Sequence[AppendCall]) -> tuple[list[str], list[str]]:
    """The (subscription, ordering key) pairs the appends write rows of (CONTRACT 5), as the
    two arrays of the order_lock statement."""
    pairs = {
        (name, key)
        for call in calls
        for event in call.events
        if event.ordering_keys is not None
        for name, key in zip(event.subscriptions, event.ordering_keys, strict=True)
        if key is not None
    }
    return [name for name, _ in pairs], [key for _, key in pairs]


def finish_args(calls: Sequence[FinishCall]) -> list[list[object]]:
    """The arrays $1..$15 of the finish statement."""
    columns: list[list[object]] = [[] for _ in range(15)]
    for call in calls:
        for outcome in call.outcomes:
            for column, value in zip(columns, _outcome(outcome, call.now), strict=True):
                column.append(value)
    return columns


def _outcome(outcome: Outcome, now: float) -> tuple[object, ...]:
    row, attempt = outcome.delivery, outcome.attempt
    tried = (attempt is not None, attempt.status if attempt else None,
             attempt.error if attempt else None, row.attempt,
             attempt.latency_ms if attempt else 0.0)
    if isinstance(outcome, Ack):
        return (now, row.id, row.lease, ACK, None, *tried, None, None, None, None, False)
    if isinstance(outcome, Retry):
        return (now, row.id, row.lease, RETRY, outcome.due_at, *tried,
                None, None, None, None, False)
    info = outcome.info
    return (now, row.id, row.lease, DEAD, None, *tried,
            info.reason, info.status, info.attempts, info.sink, outcome.notify_sink)


def leased(row: Record, subscription: str, kind: Kind, token: int) -> Leased:
    """A row of the lease statement; its attempts are already counted."""
    ident, attempts, reason, status, dl_attempts, sink, attrs, data, data_kind, received, key = (
        row[i] for i in range(11)
    )
    info = None
    if kind is Kind.DEAD_LETTER and reason is not None:
        info = DeadLetterInfo(reason, status, dl_attempts or 0, sink)
    return Leased(
        id=ident,
        subscription=subscription,
        kind=kind,
        attempt=attempts,
        lease=token,
        event=stored_event(attrs, data, data_kind),
        received_at=received,
        dead_letter=info,
        ordering_key=key,
    )


def dead_letter(row: Record) -> DeadLetter:
    return DeadLetter(
        id=row[0],
        subscription=row[1],
        event=stored_event(row[6], row[7], row[8]),
        reason=row[2],
        status=row[3],
        attempts=row[4],
        updated_at=row[5],
        producer=row[9],
    )
