"""The PostgreSQL store's operator methods (`Store` protocol, CONTRACT 6), on
`queries/postgres_ops.sql`. Reads run on a pooled connection; writes share the outcomes' group
commit, and a write that makes rows due NOTIFYs the other replicas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.store import opsrows, tallies
from gateway.store.base import DeadLetter, Handshake
from gateway.store.groupcommit import Done
from gateway.store.listener import CHANNEL
from gateway.store.ops import (
    Counts,
    DeadLetterQuery,
    EventHistory,
    RecentAttempt,
    ReplicaState,
    StoredEvent,
)
from gateway.store.pgapi import Connection
from gateway.store.tallies import tallied

if TYPE_CHECKING:
    from gateway.store.groupcommit import Apply

T = TypeVar("T")


class PostgresOps:
    """Mixed into `PostgresStore`, which provides `_run`, `_submit`, `_q` and `_schema`."""

    if TYPE_CHECKING:
        _q: Mapping[str, str]
        _schema: str

        async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T: ...

        async def _submit(self, apply: Apply[Any, T], payload: object) -> T: ...

    async def report_replica(self, state: ReplicaState) -> None:
        args = (state.replica, state.generation, state.loaded_at, state.last_error, state.seen_at)
        await self._run(lambda conn: conn.execute(self._q["ops_replica_report"], *args))

    async def replicas(self, since: float) -> list[ReplicaState]:
        rows = await self._run(lambda conn: conn.fetch(self._q["ops_replicas"], since))
        return [ReplicaState(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def counts(self) -> Mapping[str, Counts]:
        async def read(conn: Connection) -> Mapping[str, Counts]:
            pending = await conn.fetch(self._q["ops_pending"])
            dead = await conn.fetch(self._q["ops_dead"])
            found = tallied(await conn.fetch(self._q["ops_tallies"]))
            return tallies.counts(pending, dead, found)

        return await self._run(read)

    async def dead_letters_where(self, query: DeadLetterQuery) -> list[DeadLetter]:
        args = (
            query.after,
            query.limit,
            query.subscription,
            query.since,
            query.until,
            list(query.event_ids) if query.event_ids else None,
        )
        rows = await self._run(lambda conn: conn.fetch(self._q["ops_dead_letters"], *args))
        return [opsrows.dead_letter(row) for row in rows]

    async def events_between(
        self, since: float, until: float, after: int, limit: int
    ) -> list[StoredEvent]:
        query = self._q["ops_events_between"]
        rows = await self._run(lambda conn: conn.fetch(query, after, since, until, limit))
        return [opsrows.stored(row) for row in rows]

    async def requeue(self, subscription: str, seqs: Sequence[int], now: float) -> int:
        if not seqs:
            return 0
        added: int = await self._submit(self._requeue, (subscription, list(seqs), now))
        return added

    async def _requeue(
        self, conn: Connection, calls: Sequence[tuple[str, list[int], float]]
    ) -> list[Done[int]]:
        done: list[Done[int]] = []
        for subscription, seqs, now in calls:
            row = await conn.fetchrow(
                self._q["ops_requeue"], subscription, seqs, now, CHANNEL, self._schema
            )
            assert row is not None
            done.append(Done(int(row[0]), int(row[0])))  # each added row is a pending one
        return done

    async def history(self, source: str, id: str) -> EventHistory | None:
        async def read(conn: Connection) -> EventHistory | None:
            found = await conn.fetchrow(self._q["ops_event"], source, id)
            if found is None:
                return None
            deliveries = await conn.fetch(self._q["ops_event_deliveries"], found[0])
            attempts = await conn.fetch(self._q["ops_event_attempts"], found[0])
            return opsrows.history(found, deliveries, attempts)

        return await self._run(read)

    async def recent_attempts(self, subscription: str, limit: int) -> list[RecentAttempt]:
        query = self._q["ops_recent_attempts"]
        rows = await self._run(lambda conn: conn.fetch(query, subscription, limit))
        return [opsrows.recent(row) for row in rows]

    async def expire_removed(self, active: Sequence[str], now: float, retention: float) -> int:
        changed: int = await self._submit(self._expire, (now, now - retention, list(active)))
        return changed

    async def _expire(
        self, conn: Connection, calls: Sequence[tuple[float, float, list[str]]]
    ) -> list[Done[int]]:
        done: list[Done[int]] = []
        for args in calls:
            status = await conn.execute(self._q["ops_expire_removed"], *args)
            tail = status.rsplit(" ", 1)[-1]
            changed = int(tail) if tail.isdigit() else 0
            done.append(Done(changed, -changed))
        return done

    # -- validation handshakes (CONTRACT 5, `handshake: true`): rare, one autocommit statement --

    async def handshakes(self) -> Mapping[str, Handshake]:
        rows = await self._run(lambda conn: conn.fetch(self._q["handshakes"]))
        return {row[0]: Handshake(row[1], row[2], row[3], row[4], row[5]) for row in rows}

    async def save_handshake(self, subscription: str, handshake: Handshake) -> None:
        args = (
            subscription, handshake.fingerprint, handshake.origin, handshake.allowed_rate,
            handshake.error, handshake.at,
        )  # fmt: skip
        await self._run(lambda conn: conn.execute(self._q["handshake_save"], *args))
