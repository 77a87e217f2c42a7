"""The SQLite store: the embedded default, one file owned by one gateway process.

Writes (append, lease, finish, pause, resume, redeliver, purge) go through the group-commit
`Writer`; reads run inline on the event loop and see committed state. WAL with
`synchronous=NORMAL` survives a process crash; `?synchronous=full` survives power loss. The
tables come from the forward migrations in `migrations/sqlite/` (applied at open); the queries
live in `queries/sqlite.sql`.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.errors import StoreUnavailable
from gateway.event import Event
from gateway.store.base import (
    Ack,
    DeadLetter,
    DeadLetterInfo,
    Handoff,
    Kind,
    Leased,
    NewEvent,
    Opened,
    Outcome,
    PausedOn,
    Retry,
    stored_event,
)
from gateway.store.buckets import Buckets
from gateway.store.checkpoint import Checkpointer
from gateway.store.migrator import load_migrations, migrate_sqlite
from gateway.store.queries import load_queries
from gateway.store.sqlite_batch import SqliteBatches
from gateway.store.sqlite_ops import SqliteOps
from gateway.store.tallies import Tallies
from gateway.store.writer import Work, Writer, unavailable

MEMORY = ":memory:"
PURGE_CHUNK = 500  # events (or dedupe keys) per purge transaction
SYNCHRONOUS = ("normal", "full")
REPLICA = socket.gethostname()  # recorded with leases (one process owns the file)
READY_DEADLINE = 2.0  # seconds /readyz waits for the writer
_SYNC_NAMES = {0: "off", 1: "normal", 2: "full", 3: "extra"}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Durability:
    """What the connection actually runs with (for start-up logs and tests)."""

    journal_mode: str
    synchronous: str


@dataclass(slots=True)
class _Finishing:
    """Outcomes (and when each was decided) that one queued finish unit applies together."""

    outcomes: list[Outcome]
    times: list[float]
    done: asyncio.Future[None] | None = None


class SqliteStore(SqliteOps, SqliteBatches):
    """`Store` on one SQLite file (or `:memory:`)."""

    def __init__(self, path: str, *, synchronous: str = "normal") -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = path
        self.synchronous = synchronous
        self._q = {**load_queries("sqlite.sql"), **load_queries("sqlite_ops.sql"),
                   **load_queries("sqlite_batch.sql")}
        self._buckets = Buckets()
        self._conn: sqlite3.Connection | None = None
        self._lock: int | None = None
        self._writer: Writer | None = None
        self._checkpointer: Checkpointer | None = None
        self._commits = 0
        self._pending = 0
        self._identity = ""
        self._wakeup: Callable[[], None] = lambda: None
        self._observe: Callable[[float], None] | None = None
        self._finishing: _Finishing | None = None  # the queued finish unit outcomes join
        self._handoff: Handoff | None = None
        # Rows leased by the appends of the open transaction, for their handoff at commit.
        self._taken: list[tuple[Handoff, list[Leased]]] = []

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def replica(self) -> str:
        return REPLICA

    @property
    def commits(self) -> int:
        """Transactions committed by the writer(s) of this store (group commit shares them)."""
        return self._commits + (self._writer.commits if self._writer else 0)

    # -- life cycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        try:
            self._lock = _lock(self.path)
            self._conn = self._connect()
        except BaseException:
            self._release()
            raise
        self._writer = Writer(self._conn, self._q, self._committed, on_abort=self._aborted)
        self._writer.observe = self._observe
        self._writer.start()
        if self.path != MEMORY:
            self._checkpointer = Checkpointer(self.path, self._q, commits=lambda: self.commits)
            self._checkpointer.start()

    async def close(self) -> None:
        """Stop taking writes, let the writer drain what is queued, then let go of the file."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.stop()
            self._commits += writer.commits
        if self._checkpointer is not None:
            await self._checkpointer.stop()
            self._checkpointer = None
        self._release()

    async def _submit(self, work: Work[T]) -> T:
        if self._writer is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        return await self._writer.submit(work)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc
        try:
            conn.execute(self._q["journal_wal"]).fetchall()
            conn.execute(self._q[f"synchronous_{self.synchronous}"])
            if self.path != MEMORY:
                conn.execute(self._q["autocheckpoint_off"]).fetchall()
            migrate_sqlite(conn, load_migrations("sqlite"), time.time())
            conn.execute(self._q["give_back_leases"], {"now": time.time()})
            (self._pending,) = conn.execute(self._q["count_pending"]).fetchone()
            (self._identity,) = conn.execute(self._q["identity"]).fetchone()
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise unavailable(exc) from exc
            raise
        return conn

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the flock
            self._lock = None

    def durability(self) -> Durability:
        (journal,) = self._read("journal_mode")[0]
        (sync,) = self._read("synchronous")[0]
        return Durability(str(journal).lower(), _SYNC_NAMES.get(int(sync), str(sync)))

    # -- reads --------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        return self._conn

    def _read(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        conn = self._connection()
        try:
            return conn.execute(self._q[name], params or {}).fetchall()
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc

    def on_commit(self, observe: Callable[[float], None]) -> None:
        self._observe = observe
        if self._writer is not None:
            self._writer.observe = observe

    def on_wakeup(self, callback: Callable[[], None]) -> None:
        """One process owns this store: only its own appends make rows due."""
        self._wakeup = callback

    async def ping(self) -> None:
        self._read("ping")

    async def ready(self) -> None:
        """No recent failed write (a full disk), and the writer takes and commits a unit now."""
        if self._writer is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        self._writer.health.check(READY_DEADLINE)
        try:
            await asyncio.wait_for(self._submit(lambda conn: (None, 0)), READY_DEADLINE)
        except TimeoutError:
            raise StoreUnavailable(
                f"store unavailable: the writer did not answer within {READY_DEADLINE:g}s"
            ) from None

    async def pending(self) -> int:
        self._connection()
        return self._pending

    async def next_due(self, subscriptions: Sequence[str]) -> float | None:
        # One per (subscription, kind): a probe of deliveries_due (plus the keyed rows waiting
        # behind their key's head, which are skipped).
        due = [
            row[0]
            for name in dict.fromkeys(subscriptions)
            for kind in Kind
            for row in self._read("next_due", {"subscription": name, "kind": int(kind)})
        ]
        return min(due) if due else None

    async def paused(self) -> Mapping[str, PausedOn]:
        return {name: PausedOn(sink, fp, why) for name, sink, fp, why in self._read("paused")}

    async def dead_letters(self, subscription: str | None, limit: int) -> list[DeadLetter]:
        if subscription is None:
            rows = self._read("dead_letters_all", {"limit": limit})
        else:
            rows = self._read("dead_letters_of", {"subscription": subscription, "limit": limit})
        return [
            DeadLetter(
                id=row[0],
                subscription=row[1],
                event=stored_event(row[6], row[7], row[8]),
                reason=row[2],
                status=row[3],
                attempts=row[4],
                updated_at=row[5],
                producer=row[9],
            )
            for row in rows
        ]

    # -- writes -------------------------------------------------------------------------------

    async def append(
        self, batch: Sequence[NewEvent], now: float, dedupe_window: float
    ) -> list[bool]:
        if not batch:
            return []
        duplicates, waiting = await self._submit(
            lambda conn: self._append(conn, batch, now, dedupe_window)
        )
        if waiting:  # rows handed off at commit need no lease
            self._wakeup()
        return duplicates

    def _append(
        self, conn: sqlite3.Connection, batch: Sequence[NewEvent], now: float, window: float
    ) -> tuple[tuple[list[bool], int], int]:
        """The unit of one append: ((duplicates, rows left to lease), rows added)."""
        handoff = self._handoff
        taken: list[Leased] = []
        reserved: list[str] = []  # subscriptions the dispatcher reserved a slot for
        duplicates: list[bool] = []
        added = 0
        try:
            for item in batch:
                event = item.event
                key = {"source": event.source, "id": event.id, "now": now, "cutoff": now - window}
                if conn.execute(self._q["dedupe_claim"], key).rowcount != 1:
                    duplicates.append(True)
                    continue
                row = {
                    **key,
                    "type": event.type,
                    "attrs": orjson.dumps(event.attributes),
                    "data": event.data,
                    "kind": int(event.kind),
                    "producer": item.producer,
                }
                seq = conn.execute(self._q["event_insert"], row).lastrowid
                names = item.rows()
                rest = []
                for name, ordering_key in names.items():
                    # Handoff: unordered rows the dispatcher has a slot for are leased here.
                    until = None
                    if handoff is not None and ordering_key is None:
                        until = handoff.take(name, now)
                    if until is None:
                        rest.append({"seq": seq, "subscription": name,
                                     "ordering_key": ordering_key, "now": now})  # fmt: skip
                        continue
                    reserved.append(name)
                    taken.append(self._insert_leased(conn, seq, name, event, now, until))
                conn.executemany(self._q["delivery_insert"], rest)
                added += len(names)
                duplicates.append(False)
        except BaseException:
            if handoff is not None and reserved:
                handoff.dropped(reserved)  # rolled back with this unit
            raise
        if handoff is not None and taken:
            self._taken.append((handoff, taken))
        return (duplicates, added - len(taken)), added

    def _insert_leased(
        self, conn: sqlite3.Connection, seq: int | None, name: str, event: Event, now: float,
        until: float,
    ) -> Leased:
        token = secrets.randbits(63)
        params = {"seq": seq, "subscription": name, "until": until, "lease": token,
                  "replica": REPLICA, "now": now}  # fmt: skip
        ident = conn.execute(self._q["delivery_insert_leased"], params).lastrowid
        assert ident is not None
        # The event as received, without the parsed data kept for validation.
        kept = Event(event.attributes, event.data, event.kind)
        return Leased(ident, name, Kind.SINK, 1, token, kept, now)

    def hand_off(self, handoff: Handoff | None) -> None:
        self._handoff = handoff

    def _committed(self, delta: int) -> None:
        self._pending += delta
        taken, self._taken = self._taken, []
        for handoff, rows in taken:
            handoff.taken(rows)

    def _aborted(self) -> None:
        """The transaction rolled back: the rows its appends leased were never written."""
        taken, self._taken = self._taken, []
        for handoff, rows in taken:
            handoff.dropped([row.subscription for row in rows])

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        kind = Kind(kind)
        params = {"subscription": subscription, "kind": int(kind), "now": now}
        # A read first: an idle subscription costs no transaction.
        if limit <= 0 or not self._read("any_due", params):
            return []
        until = now + lease_for
        return await self._submit(lambda conn: self._lease(conn, params, kind, limit, until))

    def _lease(
        self,
        conn: sqlite3.Connection,
        params: dict[str, Any],
        kind: Kind,
        limit: int,
        until: float,
    ) -> tuple[list[Leased], int]:
        rows = conn.execute(self._q["lease_due"], {**params, "limit": limit}).fetchall()
        token = secrets.randbits(63)
        marks = [
            {"id": row[0], "lease": token, "until": until, "now": params["now"], "replica": REPLICA}
            for row in rows
        ]
        conn.executemany(self._q["lease_mark"], marks)
        # CONTRACT 5 ordering: the rows behind each keyed head wait for its lease to end.
        park = [
            {"id": row[0], "due_at": until, "upto": params["now"]}
            for row in rows
            if row[10] is not None
        ]
        if park:
            conn.executemany(self._q["park_followers"], park)
        return [_leased(row, params["subscription"], kind, token) for row in rows], 0

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
            fresh = _Finishing([], [])
            fresh.done = self._writer.queue(lambda conn: self._finish(conn, fresh))
            fresh.done.add_done_callback(lambda _: self._finished(fresh))
            group = self._finishing = fresh
        group.outcomes.extend(outcomes)
        group.times.extend([now] * len(outcomes))
        assert group.done is not None
        # Shielded: one caller giving up must not cancel the others' outcomes.
        await asyncio.shield(group.done)

    def _finished(self, group: _Finishing) -> None:
        """Later outcomes start a group of their own (also when this one was never run)."""
        if self._finishing is group:
            self._finishing = None

    def _finish(self, conn: sqlite3.Connection, group: _Finishing) -> tuple[None, int]:
        self._finished(group)
        tallies = Tallies()
        delta = 0
        for outcome, now in zip(group.outcomes, group.times, strict=True):
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

    async def pause(self, subscription: str, sink: PausedOn, reason: str, now: float) -> None:
        params = {
            "subscription": subscription,
            "sink": sink.sink,
            "fingerprint": sink.fingerprint,
            "reason": reason,
            "now": now,
        }
        await self._execute("pause", params)

    async def resume(self, subscription: str) -> None:
        await self._execute("resume", {"subscription": subscription})

    async def breakers(self) -> Mapping[str, Opened]:
        return {row[0]: Opened(row[1], row[2], row[3]) for row in self._read("breakers")}

    async def open_breaker(self, subscription: str, opened: Opened, now: float) -> None:
        await self._execute("breaker_open", _breaker(subscription, opened, now))

    async def claim_probe(self, subscription: str, opened: Opened, now: float) -> bool:
        return await self._execute("breaker_claim", _breaker(subscription, opened, now)) == 1

    async def close_breaker(self, subscription: str) -> None:
        await self._execute("breaker_close", {"subscription": subscription})

    async def take_tokens(
        self, subscription: str, rate: float, capacity: float, want: int, now: float
    ) -> int:
        """One process owns this store: its buckets live in the process."""
        return self._buckets.take(subscription, rate, want, now)

    async def redeliver(self, delivery_id: int, now: float) -> bool:
        return await self._execute("redeliver", {"id": delivery_id, "now": now}, counts=True) == 1

    async def _execute(self, name: str, params: Mapping[str, Any], *, counts: bool = False) -> int:
        """Run one statement in the writer; with `counts`, each changed row is a new pending row."""

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            changed = conn.execute(self._q[name], params).rowcount
            return changed, changed if counts else 0

        return await self._submit(work)

    async def purge(self, now: float, retention: float, dedupe_window: float) -> int:
        # Bounded chunks, each its own transaction, so one purge never stalls the loop for long.
        removed, after, more = 0, 0, True
        while more:
            work = functools.partial(self._purge_events, now - retention, after)
            count, after, more = await self._submit(work)
            removed += count
        params = {"cutoff": now - dedupe_window, "limit": PURGE_CHUNK}
        while await self._execute("purge_dedupe", params) == PURGE_CHUNK:
            pass
        return removed

    def _purge_events(
        self, cutoff: float, after: int, conn: sqlite3.Connection
    ) -> tuple[tuple[int, int, bool], int]:
        params = {"cutoff": cutoff, "after": after, "limit": PURGE_CHUNK}
        rows = conn.execute(self._q["purge_scan"], params).fetchall()
        doomed = [{"seq": seq} for seq, _, purgeable in rows if purgeable]
        for name in ("purge_attempts", "purge_deliveries", "purge_event"):
            conn.executemany(self._q[name], doomed)
        # Events are appended in time order: a chunk with nothing old is past the cutoff.
        more = len(rows) == PURGE_CHUNK and any(old for _, old, _ in rows)
        last = rows[-1][0] if rows else after
        return (len(doomed), last, more), 0


def _breaker(subscription: str, opened: Opened, now: float) -> dict[str, Any]:
    return {
        "subscription": subscription,
        "until": opened.until,
        "cooldown": opened.cooldown,
        "error": opened.error,
        "now": now,
    }


def _lock(path: str) -> int | None:
    """Take the exclusive lock that makes this process the file's only user."""
    if path == MEMORY:
        return None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise unavailable(exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StoreUnavailable(
            "store unavailable: the database is in use by another gateway process"
        ) from exc
    return fd


def _leased(row: Sequence[Any], subscription: str, kind: Kind, token: int) -> Leased:
    ident, attempts, reason, status, dl_attempts, sink, attrs, data, data_kind, received = row[:10]
    info = None
    if kind is Kind.DEAD_LETTER and reason is not None:
        info = DeadLetterInfo(reason, status, dl_attempts or 0, sink)
    return Leased(
        id=ident,
        subscription=subscription,
        kind=kind,
        attempt=attempts + 1,
        lease=token,
        event=stored_event(attrs, data, data_kind),
        received_at=received,
        dead_letter=info,
        ordering_key=row[10],
    )
