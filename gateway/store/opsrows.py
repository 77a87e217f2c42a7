"""Rows of the operators' queries (`queries/*_ops.sql`) as `gateway.store.ops` values; the SQL
stores share them (SQLite tuples and asyncpg records index alike)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from gateway.store.base import DeadLetter, stored_event
from gateway.store.ops import (
    DeliveryHistory,
    EventHistory,
    RecentAttempt,
    StoredEvent,
    TriedAt,
)


class Row(Protocol):
    """A SQLite tuple or an asyncpg record."""

    def __getitem__(self, key: int, /) -> Any: ...


def dead_letter(row: Row) -> DeadLetter:
    return DeadLetter(
        id=int(row[0]),
        subscription=row[1],
        event=stored_event(row[6], row[7], row[8]),
        reason=row[2],
        status=row[3],
        attempts=int(row[4]),
        updated_at=float(row[5]),
        producer=row[9],
    )


def stored(row: Row) -> StoredEvent:
    seq, attrs, data, kind, received_at, producer = (row[i] for i in range(6))
    return StoredEvent(int(seq), stored_event(attrs, data, kind), float(received_at), producer)


def recent(row: Row) -> RecentAttempt:
    delivery_id, attempt, at, status, latency_ms, error, source, ident = (row[i] for i in range(8))
    tried = TriedAt(int(attempt), float(at), status, float(latency_ms), error)
    return RecentAttempt(int(delivery_id), source, ident, tried)


def history(event: Row, deliveries: Iterable[Row], attempts: Iterable[Row]) -> EventHistory:
    tries: dict[int, list[TriedAt]] = {}
    for row in attempts:
        delivery_id, attempt, at, status, latency_ms, error = (row[i] for i in range(6))
        entry = TriedAt(int(attempt), float(at), status, float(latency_ms), error)
        tries.setdefault(int(delivery_id), []).append(entry)
    rows = tuple(
        DeliveryHistory(
            id=int(row[0]),
            subscription=row[1],
            kind=int(row[2]),
            state=int(row[3]),
            attempts=int(row[4]),
            due_at=float(row[5]),
            created_at=float(row[6]),
            finished_at=None if row[7] is None else float(row[7]),
            last_status=row[8],
            last_error=row[9],
            reason=row[10],
            tries=tuple(tries.get(int(row[0]), ())),
        )
        for row in deliveries
    )
    return EventHistory(stored(event), rows)
