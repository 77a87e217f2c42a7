"""The PostgreSQL store: several gateway replicas share one database (scale-out).

`postgresql://user:password@host:5432/db?pool_min=1&pool_max=10&timeout=10&replica=gw-0`. The
gateway's own options are taken off the URL: `pool_min`, `pool_max` (the connection pool of each
replica), `timeout` (seconds for connecting, for every statement, and the longest a caller waits
for a commit), `max_waiting` (requests waiting for the group commit before ingest answers 429)
and `replica` (this replica's identity, default the host name). Everything else (`sslmode`,
`application_name`, `search_path`, ...) goes to the driver. Tables live in the first schema of
the search_path and are created by the forward migrations in `migrations/postgres/`.

How replicas share the work:
- appends go through one group-commit task per replica (`GroupCommit`), outcomes and other
  writes through a second one: concurrent calls share one transaction and one statement per
  kind of work, and a lock on `events` does not hold back the outcomes of deliveries;
- dedupe by (source, id) is the `dedupe` table's primary key, claimed inside the append
  transaction, so it holds across replicas;
- leases take rows `FOR UPDATE SKIP LOCKED`, so two replicas never lease one row twice; a lease
  pushes `due_at` to its expiry, so the rows of a replica that died are taken over when their
  leases expire. Each lease records the replica's identity: a replica that restarts gives back
  the leases its previous run left (at once, not at expiry). It holds a session advisory lock on
  its identity meanwhile; when another live gateway holds that identity, this one runs under a
  unique identity instead and gives nothing back;
- a commit that makes rows due NOTIFYs the other replicas (`Listener`); polling stays the
  fallback.
Every driver error is raised as `StoreUnavailable`; the URL never appears in an error or a log.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.errors import StoreUnavailable
from gateway.store import pgrows
from gateway.store.base import (
    DeadLetter,
    Handoff,
    Kind,
    Leased,
    NewEvent,
    Opened,
    Outcome,
    PausedOn,
    rows_made,
)
from gateway.store.groupcommit import Apply, Done, GroupCommit
from gateway.store.listener import CHANNEL, Listener
from gateway.store.migrator import Migration, load_migrations, migrate_postgres
from gateway.store.pgapi import (
    FAILURES,
    Connection,
    Pool,
    Record,
    close_pool,
    create_pool,
    is_lost,
    unavailable,
)
from gateway.store.pgrows import AppendCall, FinishCall, Stored
from gateway.store.pgurl import PoolSettings, parse_url
from gateway.store.postgres_batch import PostgresBatches
from gateway.store.postgres_ops import PostgresOps
from gateway.store.queries import load_queries

__all__ = ["PoolSettings", "PostgresStore", "parse_url"]

T = TypeVar("T")

log = logging.getLogger("gateway.store")

PENDING_TTL = 1.0  # seconds a counted backlog is trusted (plus this replica's own changes)
PURGE_CHUNK = 500  # events (or dedupe keys) per purge transaction
PURGE_LOCK = 0x70757267  # first key of the purge's advisory lock ("purg")
REPLICA_LOCK = 0x7265706C  # first key of the replica identity's advisory lock ("repl")
ORDER_LOCK = 0x6F726472  # first key of the per-key ordering advisory locks ("ordr")
READY_DEADLINE = 2.0  # seconds /readyz waits for the write path (at most `timeout`)
CLOSE_GRACE = 5.0
class PostgresStore(PostgresOps, PostgresBatches):
    """`Store` on a PostgreSQL database shared by every replica."""

    def __init__(
        self,
        dsn: str,
        settings: PoolSettings | None = None,
        *,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        self._dsn = dsn
        self.settings = settings or PoolSettings()
        self._plan = tuple(migrations) if migrations is not None else load_migrations("postgres")
        self._q = {**load_queries("postgres.sql"), **load_queries("postgres_ops.sql"),
                   **load_queries("postgres_batch.sql")}
        self._pool: Pool | None = None
        self._group: GroupCommit | None = None  # appends
        self._outcomes: GroupCommit | None = None  # outcomes, pauses, redeliveries
        self._listener: Listener | None = None
        self._wakeup: Callable[[], None] | None = None
        self.appended = 0
        self._observe: Callable[[float], None] | None = None
        self._schema = ""
        self._identity = ""
        self._commits = 0
        self._resets = 0
        self.replica = self.settings.replica or socket.gethostname()
        self._owns_replica = False
        self.given_back = 0  # leases of this replica's previous run given back at open
        self._counted = 0  # the backlog as last counted
        self._delta = 0  # this replica's changes since
        self._counted_at = float("-inf")
        self._counting = False

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def commits(self) -> int:
        """Transactions committed by the group commits of this store."""
        return self._commits + sum(group.commits for group in self._groups())

    @property
    def pool_resets(self) -> int:
        """How often every pooled connection was marked for replacement (a lost connection)."""
        return self._resets + sum(group.resets for group in self._groups())

    def _groups(self) -> list[GroupCommit]:
        return [group for group in (self._group, self._outcomes) if group is not None]

    def after_commit(self, hook: Callable[[Connection], Awaitable[None]] | None) -> None:
        """Run `hook` on the appends' connection right after each COMMIT (fault tests)."""
        if self._group is not None:
            self._group.after_commit = hook

    # -- life cycle ---------------------------------------------------------------------------

    def on_commit(self, observe: Callable[[float], None]) -> None:
        self._observe = observe
        for group in self._groups():
            group.observe = observe

    def hand_off(self, handoff: Handoff | None) -> None:
        """Not taken: every row is leased with `FOR UPDATE SKIP LOCKED`, whichever replica
        appended it (the appends are batched statements per kind of row)."""

    def on_wakeup(self, callback: Callable[[], None]) -> None:
        """`callback` runs after this replica's appends commit, and (LISTEN from `open()` on)
        when another replica made rows due."""
        self._wakeup = callback

    async def open(self) -> None:
        """Connect, apply the migrations this database lacks, claim this replica's identity and
        give back the leases its previous run left; other replicas' leases are left to expire."""
        if self._pool is not None:
            return
        s = self.settings
        pool = await create_pool(
            self._dsn, min_size=s.pool_min, max_size=s.pool_max, seconds=s.timeout
        )
        try:
            self._schema, self._identity = await self._run(self._migrate, pool)
            listener = Listener(
                self._dsn,
                self._schema,
                self._wakeup or _nothing,
                ping=self._q["ping"],
                seconds=s.timeout,
                on_connect=self._claim_replica,
            )
            await listener.start()
            self._listener = listener
            if self._owns_replica:
                self.given_back = await self._run(self._give_back, pool)
                if self.given_back:
                    log.info("replica %r gave back %d leases its previous run left",
                             self.replica, self.given_back)
            else:
                taken = self.replica
                self.replica = f"{taken}~{os.getpid()}-{secrets.token_hex(3)}"
                log.warning(
                    "replica identity %r is held by another running gateway: this one runs as "
                    "%r and its leases are taken over only when they expire; give each replica "
                    "its own replica= in the store URL", taken, self.replica,
                )
        except BaseException:
            if self._listener is not None:
                await self._listener.stop()
                self._listener = None
            await close_pool(pool, CLOSE_GRACE)
            raise
        self._pool = pool
        self._counted_at = float("-inf")
        self._group = GroupCommit(
            pool, timeout=s.timeout, on_commit=self._committed, limit=s.max_waiting
        )
        self._outcomes = GroupCommit(
            pool, timeout=s.timeout, on_commit=self._committed, name="store-outcomes"
        )
        for group in (self._group, self._outcomes):
            group.observe = self._observe
            group.start()

    async def _claim_replica(self, conn: Connection) -> None:
        """On the listening session: hold this replica's identity while the process lives."""
        owned = bool(await conn.fetchval(self._q["replica_lock"], REPLICA_LOCK, self.replica))
        if self._owns_replica and not owned:
            log.warning("replica identity %r was taken while reconnecting", self.replica)
        self._owns_replica = owned

    async def _give_back(self, conn: Connection) -> int:
        return _changed(await conn.execute(self._q["give_back_leases"], self.replica, time.time()))

    async def _migrate(self, conn: Connection) -> tuple[str, str]:
        await migrate_postgres(conn, self._plan, time.time())
        schema = str(await conn.fetchval(self._q["schema"]))
        return schema, str(await conn.fetchval(self._q["identity"]))

    async def close(self) -> None:
        """Stop taking writes, commit what is queued, then close the connections."""
        groups, self._group, self._outcomes = self._groups(), None, None
        for group in groups:
            await group.stop()
            self._commits += group.commits
            self._resets += group.resets
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await close_pool(pool, CLOSE_GRACE)

    def _require(self) -> Pool:
        if self._pool is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        return self._pool

    async def _run(self, work: Callable[[Connection], Awaitable[T]], pool: Pool | None = None) -> T:
        """Run `work` on a pooled connection; once more on a fresh one when the connection
        turned out lost (a server restart or a terminated backend leaves dead connections in
        the pool)."""
        pool = pool if pool is not None else self._require()
        try:
            return await self._once(pool, work)
        except FAILURES as exc:
            if not is_lost(exc):
                raise unavailable(exc) from exc
        self._resets += 1
        await pool.expire_connections()
        try:
            return await self._once(pool, work)
        except FAILURES as exc:
            raise unavailable(exc) from exc

    async def _once(self, pool: Pool, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with pool.acquire(timeout=self.settings.timeout) as conn:
            return await work(conn)

    async def _submit(
        self, apply: Apply[Any, T], payload: object, *, outcome: bool = True
    ) -> T:
        """Queue a unit and wait for its commit, at most `timeout` seconds (then 503; the unit
        may still commit: the README says so)."""
        group = self._outcomes if outcome else self._group
        if group is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        seconds = self.settings.timeout
        try:
            return await group.submit(apply, payload, deadline=seconds)
        except TimeoutError:
            raise StoreUnavailable(
                f"store unavailable: PostgreSQL did not commit within {seconds:g}s"
            ) from None

    def _committed(self, delta: int) -> None:
        self._delta += delta

    # -- reads --------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute(self._q["ping"]))

    async def ready(self) -> None:
        """The write path answers within a short deadline: no recent failed commit, no commit
        stuck, and the tables appends write can be locked for writing right now."""
        deadline = min(READY_DEADLINE, self.settings.timeout)
        for group in self._groups():
            group.health.check(deadline)
        self._require()
        try:
            await asyncio.wait_for(self._run(functools.partial(self._probe, deadline)), deadline)
        except TimeoutError:
            raise StoreUnavailable(
                f"store unavailable: the write path did not answer within {deadline:g}s"
            ) from None

    async def _probe(self, deadline: float, conn: Connection) -> None:
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: nothing is written
            await conn.execute(self._q["probe_lock_timeout"], f"{int(deadline * 800)}ms")
            await conn.execute(self._q["probe_write_locks"])
        finally:
            await transaction.rollback()

    async def pending(self) -> int:
        """The backlog, counted at most once per `PENDING_TTL` plus this replica's own changes
        since: cheap enough for every ingest request. Other replicas' changes show up at the
        next count; a change committed while counting may be counted twice until the next."""
        self._require()
        if not self._counting and time.monotonic() - self._counted_at >= PENDING_TTL:
            self._counting = True
            try:
                before = self._delta
                counted = await self._run(lambda conn: conn.fetchval(self._q["count_pending"]))
                self._counted, self._delta = int(counted), self._delta - before
                self._counted_at = time.monotonic()
            finally:
                self._counting = False
        return max(self._counted + self._delta, 0)

    async def next_due(self, subscriptions: Sequence[str]) -> float | None:
        names = list(dict.fromkeys(subscriptions))
        if not names:
            self._require()
            return None
        due = await self._run(lambda conn: conn.fetchval(self._q["next_due"], names))
        return None if due is None else float(due)

    async def paused(self) -> Mapping[str, PausedOn]:
        rows = await self._run(lambda conn: conn.fetch(self._q["paused"]))
        return {row[0]: PausedOn(row[1], row[2], row[3]) for row in rows}

    async def dead_letters(self, subscription: str | None, limit: int) -> list[DeadLetter]:
        args: tuple[object, ...]
        if subscription is None:
            query, args = self._q["dead_letters_all"], (limit,)
        else:
            query, args = self._q["dead_letters_of"], (limit, subscription)
        rows = await self._run(lambda conn: conn.fetch(query, *args))
        return [pgrows.dead_letter(row) for row in rows]

    # -- leases -------------------------------------------------------------------------------

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        kind = Kind(kind)
        if limit <= 0:
            self._require()
            return []
        pool = self._require()
        for tries in (1, 2):
            # A fresh token per try: rows a failed try may have leased are found by its token.
            token = secrets.randbits(63)
            args = (subscription, int(kind), now, limit, token, now + lease_for, self.replica)
            try:
                rows = await self._once(pool, functools.partial(self._lease, args))
            except FAILURES as exc:
                await self._unlease(token, now)
                if not is_lost(exc) or tries == 2:
                    raise unavailable(exc) from exc
                self._resets += 1
                await pool.expire_connections()
                continue
            return [pgrows.leased(row, subscription, kind, token) for row in rows]
        raise AssertionError("unreachable")

    async def _lease(self, args: tuple[object, ...], conn: Connection) -> list[Record]:
        return await conn.fetch(self._q["lease"], *args)

    async def _unlease(self, token: int, now: float) -> None:
        """Give back the rows a failed lease statement may have committed without our hearing
        of it (the connection died before the answer); otherwise they wait for expiry."""
        try:
            await self._run(lambda conn: conn.execute(self._q["unlease"], token, now))
        except StoreUnavailable:
            log.info("rows of a failed lease wait for its expiry")

    # -- writes (group commit) ----------------------------------------------------------------

    async def append(
        self, batch: Sequence[NewEvent], now: float, dedupe_window: float
    ) -> list[bool]:
        if not batch:
            return []
        call = AppendCall(tuple(Stored.of(item) for item in batch), now, dedupe_window)
        duplicates = await self._submit(self._append, call, outcome=False)
        self.appended += rows_made(batch, duplicates)
        if self._wakeup is not None and not all(duplicates):
            self._wakeup()  # this replica's dispatcher; the others hear the NOTIFY
        return duplicates

    async def _append(
        self, conn: Connection, calls: Sequence[AppendCall]
    ) -> list[Done[list[bool]]]:
        stored: set[tuple[int, int]] = set()
        names, keys = pgrows.ordered_keys(calls)
        if names:  # CONTRACT 5 ordering: rows of one key get ids in commit order
            await conn.execute(self._q["order_lock"], ORDER_LOCK, names, keys)
        for window, slots in pgrows.rounds(calls):
            args = pgrows.append_args(calls, slots)
            row = await conn.fetchrow(self._q["append"], window, *args, CHANNEL, self._schema)
            assert row is not None
            stored.update(slots[ordinal] for ordinal in row[0] or ())
        done: list[Done[list[bool]]] = []
        for c, call in enumerate(calls):
            fresh = [(c, e) in stored for e in range(len(call.events))]
            added = sum(
                len(event.subscriptions)
                for event, new in zip(call.events, fresh, strict=True)
                if new
            )
            done.append(Done([not new for new in fresh], added))
        return done

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> None:
        if outcomes:
            await self._submit(self._finish, FinishCall(tuple(outcomes), now))

    async def _finish(self, conn: Connection, calls: Sequence[FinishCall]) -> list[Done[None]]:
        args = pgrows.finish_args(calls)
        row = await conn.fetchrow(self._q["finish"], *args, CHANNEL, self._schema, self.replica)
        assert row is not None
        ended, queued = int(row[0]), int(row[1])
        # The counts are of the whole statement: the first call carries them.
        return [Done(None, queued - ended), *(Done(None) for _ in calls[1:])]

    async def pause(self, subscription: str, sink: PausedOn, reason: str, now: float) -> None:
        args = (subscription, sink.sink, sink.fingerprint, reason, now)
        await self._submit(_Statement(self._q["pause"]).apply, args)

    async def resume(self, subscription: str) -> None:
        await self._submit(_Statement(self._q["resume"]).apply, (subscription,))

    # Breaker changes are rare (an opening, a probe, a close): one autocommit statement each,
    # outside the grouped writes.

    async def breakers(self) -> Mapping[str, Opened]:
        rows = await self._run(lambda conn: conn.fetch(self._q["breakers"]))
        return {row[0]: Opened(row[1], row[2], row[3]) for row in rows}

    async def open_breaker(self, subscription: str, opened: Opened, now: float) -> None:
        args = (subscription, opened.until, opened.cooldown, opened.error, now)
        await self._run(lambda conn: conn.execute(self._q["breaker_open"], *args))

    async def claim_probe(self, subscription: str, opened: Opened, now: float) -> bool:
        args = (subscription, opened.until, opened.cooldown, opened.error, now)
        status = await self._run(lambda conn: conn.execute(self._q["breaker_claim"], *args))
        return _changed(status) == 1

    async def close_breaker(self, subscription: str) -> None:
        await self._run(lambda conn: conn.execute(self._q["breaker_close"], subscription))

    async def take_tokens(
        self, subscription: str, rate: float, capacity: float, want: int, now: float
    ) -> int:
        args = (subscription, rate, capacity, want, now)
        got = await self._run(lambda conn: conn.fetchval(self._q["rate_take"], *args))
        return int(got or 0)

    async def redeliver(self, delivery_id: int, now: float) -> bool:
        changed: int = await self._submit(self._redeliver, (delivery_id, now))
        return changed == 1

    async def _redeliver(
        self, conn: Connection, calls: Sequence[tuple[int, float]]
    ) -> list[Done[int]]:
        done: list[Done[int]] = []
        for delivery_id, now in calls:
            row = await conn.fetchrow(self._q["redeliver"], delivery_id, now, CHANNEL, self._schema)
            assert row is not None
            done.append(Done(int(row[0]), int(row[0])))  # each changed row is pending again
        return done

    async def purge(self, now: float, retention: float, dedupe_window: float) -> int:
        """Bounded chunks, each its own transaction; skipped while another replica purges."""
        removed, after, more = 0, 0, True
        while more:
            chunk = functools.partial(self._purge_events, cutoff=now - retention, after=after)
            count, after, more = await self._run(chunk)
            removed += count
        expired = functools.partial(self._purge_dedupe, cutoff=now - dedupe_window)
        while await self._run(expired):
            pass
        return removed

    async def _purge_events(
        self, conn: Connection, *, cutoff: float, after: int
    ) -> tuple[int, int, bool]:
        async with conn.transaction():
            if not await conn.fetchval(self._q["purge_lock"], PURGE_LOCK):
                return 0, after, False
            row = await conn.fetchrow(self._q["purge_chunk"], cutoff, after, PURGE_CHUNK)
        assert row is not None
        removed, last, scanned, any_old = int(row[0]), row[1], int(row[2]), bool(row[3])
        # Events are appended in time order: a chunk with nothing old is past the cutoff.
        return removed, int(last) if last is not None else after, scanned == PURGE_CHUNK and any_old

    async def _purge_dedupe(self, conn: Connection, *, cutoff: float) -> bool:
        """Delete one chunk of expired keys; True when there may be more."""
        async with conn.transaction():
            if not await conn.fetchval(self._q["purge_lock"], PURGE_LOCK):
                return False
            status = await conn.execute(self._q["purge_dedupe"], cutoff, PURGE_CHUNK)
        return _changed(status) == PURGE_CHUNK


def _nothing() -> None:
    """No dispatcher listens: wakeups are dropped."""


@dataclass(frozen=True, slots=True)
class _Statement:
    """A unit of one statement per call, answering the rows it changed."""

    query: str

    async def apply(self, conn: Connection, calls: Sequence[tuple[object, ...]]) -> list[Done[int]]:
        return [Done(_changed(await conn.execute(self.query, *args))) for args in calls]


def _changed(status: str) -> int:
    """The row count of a command status such as `UPDATE 3` or `INSERT 0 1`."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
