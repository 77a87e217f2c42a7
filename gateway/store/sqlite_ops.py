"""The SQLite store's operator methods (`Store` protocol, CONTRACT 6), on `queries/sqlite_ops.sql`.
Reads run on the store's connection, writes in its writer, like the rest of the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from gateway.store import opsrows, tallies
from gateway.store.base import DeadLetter, Handshake
from gateway.store.ops import (
    Counts,
    DeadLetterQuery,
    EventHistory,
    RecentAttempt,
    ReplicaState,
    StoredEvent,
)
from gateway.store.tallies import tallied

if TYPE_CHECKING:
    from gateway.store.writer import Work

T = TypeVar("T")


class SqliteOps:
    """Mixed into `SqliteStore`, which provides `_read`, `_submit` and the queries `_q`."""

    if TYPE_CHECKING:
        _q: Mapping[str, str]

        def _read(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

        async def _submit(self, work: Work[T]) -> T: ...

    async def report_replica(self, state: ReplicaState) -> None:
        query, params = self._q["ops_replica_report"], {
            "replica": state.replica, "generation": state.generation,
            "loaded_at": state.loaded_at, "last_error": state.last_error,
            "seen_at": state.seen_at,
        }  # fmt: skip

        def work(conn: sqlite3.Connection) -> tuple[None, int]:
            conn.execute(query, params)
            return None, 0

        await self._submit(work)

    async def replicas(self, since: float) -> list[ReplicaState]:
        return [ReplicaState(*row) for row in self._read("ops_replicas", {"since": since})]

    async def counts(self) -> Mapping[str, Counts]:
        return tallies.counts(
            self._read("ops_pending"), self._read("ops_dead"), tallied(self._read("ops_tallies"))
        )

    async def dead_letters_where(self, query: DeadLetterQuery) -> list[DeadLetter]:
        params = {
            "after": query.after,
            "limit": query.limit,
            "subscription": query.subscription,
            "since": query.since,
            "until": query.until,
            "ids": orjson.dumps(list(query.event_ids)).decode() if query.event_ids else None,
        }
        return [opsrows.dead_letter(row) for row in self._read("ops_dead_letters", params)]

    async def events_between(
        self, since: float, until: float, after: int, limit: int
    ) -> list[StoredEvent]:
        params = {"since": since, "until": until, "after": after, "limit": limit}
        return [opsrows.stored(row) for row in self._read("ops_events_between", params)]

    async def requeue(self, subscription: str, seqs: Sequence[int], now: float) -> int:
        if not seqs:
            return 0
        query = self._q["ops_requeue"]

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            added = sum(
                conn.execute(query, {"subscription": subscription, "seq": seq, "now": now}).rowcount
                for seq in seqs
            )
            return added, added  # every added row is a new pending one

        return await self._submit(work)

    async def history(self, source: str, id: str) -> EventHistory | None:
        found = self._read("ops_event", {"source": source, "id": id})
        if not found:
            return None
        seq = {"seq": found[0][0]}
        deliveries = self._read("ops_event_deliveries", seq)
        return opsrows.history(found[0], deliveries, self._read("ops_event_attempts", seq))

    async def recent_attempts(self, subscription: str, limit: int) -> list[RecentAttempt]:
        params = {"subscription": subscription, "limit": limit}
        return [opsrows.recent(row) for row in self._read("ops_recent_attempts", params)]

    async def expire_removed(self, active: Sequence[str], now: float, retention: float) -> int:
        params = {
            "now": now,
            "cutoff": now - retention,
            "active": orjson.dumps(list(active)).decode(),
        }
        query = self._q["ops_expire_removed"]

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            changed = conn.execute(query, params).rowcount
            return changed, -changed

        return await self._submit(work)

    # -- validation handshakes (CONTRACT 5, `handshake: true`) ----------------------------------

    async def handshakes(self) -> Mapping[str, Handshake]:
        return {row[0]: Handshake(*row[1:]) for row in self._read("handshakes")}

    async def save_handshake(self, subscription: str, handshake: Handshake) -> None:
        query, params = self._q["handshake_save"], {
            "subscription": subscription, "fingerprint": handshake.fingerprint,
            "origin": handshake.origin, "allowed_rate": handshake.allowed_rate,
            "error": handshake.error, "at": handshake.at,
        }  # fmt: skip

        def work(conn: sqlite3.Connection) -> tuple[None, int]:
            conn.execute(query, params)
            return None, 0

        await self._submit(work)
