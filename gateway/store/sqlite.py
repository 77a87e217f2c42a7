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

from gateway.errors import StoreUnavailable
from gateway.store.base import (
    DeadLetter,
    DeadLetterInfo,
    Handoff,
    Kind,
    Leased,
    Opened,
    PausedOn,
    stored_event,
)
from gateway.store.buckets import Buckets
from gateway.store.checkpoint import Checkpointer
from gateway.store.migrator import load_migrations, migrate_sqlite
from gateway.store.queries import load_queries
from gateway.store.sqlite_appends import SqliteAppends
from gateway.store.sqlite_batch import SqliteBatches
from gateway.store.sqlite_ops import SqliteOps
from gateway.store.sqlite_outcomes import Finishing, SqliteOutcomes
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


class SqliteStore(SqliteAppends, SqliteOutcomes, SqliteOps, SqliteBatches):
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
        self.appended = 0
        self._observe: Callable[[float], None] | None = None
        self._finishing: Finishing | None = None  # the queued finish unit outcomes join
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
            self._checkpointer = Checkpointer(
                self.path, self._q, commits=lambda: self.commits, hold=self._writer.held
            )
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

    def _committed(self, delta: int) -> None:
        self._pending += delta
        self._hand_over()

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
