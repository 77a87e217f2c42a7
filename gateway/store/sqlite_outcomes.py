"""The SQLite store's outcomes (`Store.finish`): each applied only while its lease is current,
the attempts log and the running tallies written with it; outcomes recorded while one finish
waits in the writer's queue join it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import StoreUnavailable
from gateway.store.base import Ack, Outcome, Retry
from gateway.store.tallies import Tallies

if TYPE_CHECKING:
    from gateway.store.writer import Writer


@dataclass(slots=True)
class Finishing:
    """Outcomes, each with when it was decided, that one queued finish unit applies together."""

    outcomes: list[tuple[Outcome, float]]
    done: asyncio.Future[None] | None = None


class SqliteOutcomes:
    """Mixed into `SqliteStore`, which provides its `_writer`, the queries `_q` and the queued
    finish unit `_finishing`."""

    if TYPE_CHECKING:
        _q: Mapping[str, str]
        _writer: Writer | None
        _finishing: Finishing | None

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> None:
        """Outcomes recorded while a finish waits in the writer's queue join it: one savepoint
        and one tally upsert for all of them (under fan-out load, dozens of attempts end
        between two commits). If that unit fails, every caller in it gets the error."""
        if not outcomes:
            return
        group = self._finishing
        if group is None:
            if self._writer is None:
                raise StoreUnavailable("store unavailable: the store is closed")
            fresh = Finishing([])
            fresh.done = self._writer.queue(lambda conn: self._finish(conn, fresh))
            fresh.done.add_done_callback(lambda _: self._finished(fresh))
            group = self._finishing = fresh
        group.outcomes.extend((outcome, now) for outcome in outcomes)
        assert group.done is not None
        # Shielded: one caller giving up must not cancel the others' outcomes.
        await asyncio.shield(group.done)

    def _finished(self, group: Finishing) -> None:
        """Later outcomes start a group of their own (also when this one was never run)."""
        if self._finishing is group:
            self._finishing = None

    def _finish(self, conn: sqlite3.Connection, group: Finishing) -> tuple[None, int]:
        self._finished(group)
        from gateway.store.sqlite import REPLICA

        tallies = Tallies()
        delta = 0
        for outcome, now in group.outcomes:
            delta += self._outcome(conn, outcome, now, tallies)
        conn.executemany(self._q["tally"], tallies.rows(REPLICA))
        return None, delta

    def _outcome(
        self, conn: sqlite3.Connection, outcome: Outcome, now: float, tallies: Tallies
    ) -> int:
        """Apply one outcome if its lease is still current; return the change of pending rows."""
        row, attempt = outcome.delivery, outcome.attempt
        params: dict[str, Any] = {
            "id": row.id,
            "lease": row.lease,
            "now": now,
            "tried": attempt is not None,
            "status": attempt.status if attempt else None,
            "error": attempt.error if attempt else None,
        }
        delta = 0
        if isinstance(outcome, Ack):
            changed = conn.execute(self._q["finish_ack"], params).rowcount
            delta = -changed
        elif isinstance(outcome, Retry):
            params["due_at"] = outcome.due_at
            changed = conn.execute(self._q["finish_retry"], params).rowcount
            if changed and row.ordering_key is not None:  # CONTRACT 5: the key waits too
                park = {"id": row.id, "due_at": outcome.due_at, "upto": outcome.due_at}
                conn.execute(self._q["park_followers"], park)
        else:
            info = outcome.info
            params.update(
                reason=info.reason, dl_status=info.status, dl_attempts=info.attempts, sink=info.sink
            )
            changed = conn.execute(self._q["finish_dead"], params).rowcount
            delta = -changed
            if changed and outcome.notify_sink:
                delta += conn.execute(self._q["dead_letter_insert"], params).rowcount
        if changed and row.ordering_key is not None and not isinstance(outcome, Retry):
            # CONTRACT 5 ordering: the head ended; the key's next row is due
            conn.execute(self._q["unpark_next"], {"id": row.id, "now": now})
        if changed:
            tallies.add(outcome, now)
        if changed and attempt is not None:
            log = {**params, "attempt": row.attempt, "latency_ms": attempt.latency_ms}
            conn.execute(self._q["attempt_log"], log)
        return delta

