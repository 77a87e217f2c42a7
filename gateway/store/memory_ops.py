"""The in-memory store's operator methods (`Store` protocol, CONTRACT 6), for unit tests."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from gateway.store import tallies
from gateway.store.base import DeadLetter, DeadLetterInfo, Handshake, Kind, State
from gateway.store.ops import (
    REMOVED,
    Counts,
    DeadLetterQuery,
    DeliveryHistory,
    EventHistory,
    RecentAttempt,
    ReplicaState,
    StoredEvent,
    TriedAt,
)

if TYPE_CHECKING:
    from gateway.store.memory import LoggedAttempt, _Row, _Stored
    from gateway.store.tallies import Tallies


class MemoryOps:
    """Mixed into `MemoryStore`, which provides the rows, events and attempts log."""

    if TYPE_CHECKING:
        attempts: list[LoggedAttempt]
        _events: dict[int, _Stored]
        _rows: dict[int, _Row]
        _ids: itertools.count[int]
        _wakeup: Callable[[], None]
        _replicas: dict[str, ReplicaState]
        _handshakes: dict[str, Handshake]
        _tallies: Tallies

        def _check(self) -> None: ...

        def _put(self, row: _Row, **changes: object) -> _Row: ...

        async def dead_letters(self, subscription: str | None, limit: int) -> list[DeadLetter]: ...

    async def report_replica(self, state: ReplicaState) -> None:
        self._check()
        self._replicas[state.replica] = state

    async def replicas(self, since: float) -> list[ReplicaState]:
        self._check()
        return sorted((r for r in self._replicas.values() if r.seen_at >= since),
                      key=lambda r: r.replica)  # fmt: skip

    async def counts(self) -> Mapping[str, Counts]:
        self._check()
        pending: dict[str, tuple[str, int, float | None]] = {}
        dead: Counter[str] = Counter()
        for row in self._rows.values():
            if row.kind is not Kind.SINK:
                continue
            if row.state is State.PENDING:
                _, n, oldest = pending.get(row.subscription, (row.subscription, 0, None))
                first = row.created_at if oldest is None else min(oldest, row.created_at)
                pending[row.subscription] = (row.subscription, n + 1, first)
            elif row.state is State.DEAD:
                dead[row.subscription] += 1
        return tallies.counts(pending.values(), dead.items(), self._tallies.by_name)

    async def dead_letters_where(self, query: DeadLetterQuery) -> list[DeadLetter]:
        self._check()
        ids = set(query.event_ids)
        found = [
            dead
            for dead in await self.dead_letters(query.subscription, len(self._rows))
            if dead.id > query.after
            and (query.since is None or dead.updated_at >= query.since)
            and (query.until is None or dead.updated_at < query.until)
            and (not ids or dead.event.id in ids)
        ]
        return sorted(found, key=lambda dead: dead.id)[: max(query.limit, 0)]

    async def events_between(
        self, since: float, until: float, after: int, limit: int
    ) -> list[StoredEvent]:
        self._check()
        return [
            StoredEvent(seq, stored.event(), stored.received_at, stored.producer)
            for seq, stored in sorted(self._events.items())
            if seq > after and since <= stored.received_at < until
        ][: max(limit, 0)]

    async def requeue(self, subscription: str, seqs: Sequence[int], now: float) -> int:
        self._check()
        from gateway.store.memory import _Row

        added = 0
        for seq in seqs:
            if seq not in self._events:
                continue
            earlier = [
                row.ordering_key
                for row in self._rows.values()
                if row.event_seq == seq and row.subscription == subscription
            ]
            row = _Row(
                next(self._ids), seq, subscription, Kind.SINK, now, now, now,
                ordering_key=earlier[0] if earlier else None,
            )  # fmt: skip
            self._rows[row.id] = row
            added += 1
        if added:
            self._wakeup()
        return added

    async def history(self, source: str, id: str) -> EventHistory | None:
        self._check()
        seqs = [seq for seq, e in self._events.items() if (e.source, e.id) == (source, id)]
        if not seqs:
            return None
        seq = max(seqs)
        stored = self._events[seq]
        rows = sorted((r for r in self._rows.values() if r.event_seq == seq), key=lambda r: r.id)
        return EventHistory(
            StoredEvent(seq, stored.event(), stored.received_at, stored.producer),
            tuple(
                DeliveryHistory(
                    row.id,
                    row.subscription,
                    int(row.kind),
                    int(row.state),
                    row.attempts,
                    row.due_at,
                    row.created_at,
                    row.finished_at,
                    row.last_status,
                    row.last_error,
                    row.dead.reason if row.dead else None,
                    tuple(
                        TriedAt(
                            e.attempt, e.at, e.result.status, e.result.latency_ms, e.result.error
                        )
                        for e in self.attempts
                        if e.delivery_id == row.id
                    ),
                )
                for row in rows
            ),
        )

    async def recent_attempts(self, subscription: str, limit: int) -> list[RecentAttempt]:
        self._check()
        found = []
        for entry in reversed(self.attempts):
            row = self._rows.get(entry.delivery_id)
            if row is None or row.kind is not Kind.SINK or row.subscription != subscription:
                continue
            event = self._events[row.event_seq]
            r = entry.result
            tried = TriedAt(entry.attempt, entry.at, r.status, r.latency_ms, r.error)
            found.append(RecentAttempt(row.id, event.source, event.id, tried))
            if len(found) == limit:
                break
        return found

    async def expire_removed(self, active: Sequence[str], now: float, retention: float) -> int:
        self._check()
        names = set(active)
        changed = 0
        for row in list(self._rows.values()):
            if (
                row.state is State.PENDING
                and row.kind is Kind.SINK
                and row.subscription not in names
                and row.created_at < now - retention
                and (row.lease is None or row.due_at <= now)
            ):
                info = DeadLetterInfo(REMOVED, None, row.attempts, "")
                self._put(
                    row, state=State.DEAD, lease=None, finished_at=now, updated_at=now, dead=info
                )
                changed += 1
        return changed

    # -- validation handshakes (CONTRACT 5, `handshake: true`) ----------------------------------

    async def handshakes(self) -> Mapping[str, Handshake]:
        self._check()
        return dict(sorted(self._handshakes.items()))

    async def save_handshake(self, subscription: str, handshake: Handshake) -> None:
        self._check()
        self._handshakes[subscription] = handshake
