"""The PostgreSQL store: several gateway replicas share one database (scale-out).

`postgresql://user:password@host:5432/db?pool_min=1&pool_max=10&timeout=10`. The gateway's own
options (`pool_min`, `pool_max`: the connection pool of each replica; `timeout`: seconds for
connecting and for every statement) are taken off the URL; everything else (`sslmode`,
`application_name`, `search_path`, ...) goes to the driver. Tables live in the first schema of
the search_path and are created by the forward migrations in `migrations/postgres/`.

How replicas share the work:
- appends and outcomes go through one group-commit task per replica (`GroupCommit`): concurrent
  calls share one transaction and one statement per kind of work;
- dedupe by (source, id) is the `dedupe` table's primary key, claimed inside the append
  transaction, so it holds across replicas;
- leases take rows `FOR UPDATE SKIP LOCKED`, so two replicas never lease one row twice; a lease
  pushes `due_at` to its expiry, so the rows of a replica that died are taken over when their
  leases expire (leases are NOT given back at open: another live replica may hold them);
- a commit that makes rows due NOTIFYs the other replicas (`Listener`); polling stays the
  fallback.
Every driver error is raised as `StoreUnavailable`; the URL never appears in an error or a log.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.errors import StoreUnavailable
from gateway.store import pgrows
from gateway.store.base import DeadLetter, Kind, Leased, NewEvent, Outcome, PausedOn
from gateway.store.groupcommit import Apply, Done, GroupCommit
from gateway.store.listener import CHANNEL, Listener
from gateway.store.migrator import Migration, load_migrations, migrate_postgres
from gateway.store.pgapi import (
    FAILURES,
    Connection,
    Pool,
    close_pool,
    create_pool,
    is_lost,
    unavailable,
)
from gateway.store.pgrows import AppendCall, FinishCall, Stored
from gateway.store.queries import load_queries

T = TypeVar("T")

PENDING_TTL = 1.0  # seconds a counted backlog is trusted (plus this replica's own changes)
PURGE_CHUNK = 500  # events (or dedupe keys) per purge transaction
PURGE_LOCK = 0x70757267  # first key of the purge's advisory lock ("purg")
CLOSE_GRACE = 5.0
# Session settings unless the URL names them: how operators find the gateway in pg_stat_activity.
DRIVER_DEFAULTS = (("application_name", "gateway"),)


@dataclass(frozen=True, slots=True)
class PoolSettings:
    pool_min: int = 1
    pool_max: int = 10
    timeout: float = 10.0


def parse_url(url: str) -> tuple[str, PoolSettings]:
    """Take the gateway's options off a `postgresql://` URL: the driver's URL and the settings.

    Errors never repeat the URL (it may hold a password).
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in ("pool_min", "pool_max", "timeout")}
    rest = [(key, value) for key, value in query if key not in ours]
    defaults = PoolSettings()
    try:
        settings = PoolSettings(
            pool_min=int(ours.get("pool_min", defaults.pool_min)),
            pool_max=int(ours.get("pool_max", defaults.pool_max)),
            timeout=float(ours.get("timeout", defaults.timeout)),
        )
    except ValueError:
        raise StoreUnavailable(
            "store unavailable: pool_min and pool_max must be whole numbers, timeout seconds"
        ) from None
    if not 0 <= settings.pool_min <= settings.pool_max or settings.pool_max < 1:
        raise StoreUnavailable(
            "store unavailable: need 0 <= pool_min <= pool_max and pool_max >= 1"
        )
    if not settings.timeout > 0:
        raise StoreUnavailable("store unavailable: timeout must be more than 0 seconds")
    given = {key for key, _ in rest}
    for key, value in DRIVER_DEFAULTS:
        if key not in given:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), settings


class PostgresStore:
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
        self._q = load_queries("postgres.sql")
        self._pool: Pool | None = None
        self._group: GroupCommit | None = None
        self._listener: Listener | None = None
        self._wakeup: Callable[[], None] | None = None
        self._schema = ""
        self._identity = ""
        self._commits = 0
        self._counted = 0  # the backlog as last counted
        self._delta = 0  # this replica's changes since
        self._counted_at = float("-inf")
        self._counting = False

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def commits(self) -> int:
        """Transactions committed by the group commit(s) of this store."""
        return self._commits + (self._group.commits if self._group else 0)

    # -- life cycle ---------------------------------------------------------------------------

    def on_wakeup(self, callback: Callable[[], None]) -> None:
        """LISTEN from `open()` on: `callback` runs when another replica made rows due."""
        self._wakeup = callback

    async def open(self) -> None:
        """Connect, apply the migrations this database lacks; leases are left to expire."""
        if self._pool is not None:
            return
        s = self.settings
        pool = await create_pool(
            self._dsn, min_size=s.pool_min, max_size=s.pool_max, seconds=s.timeout
        )
        try:
            self._schema, self._identity = await self._run(self._migrate, pool)
            if self._wakeup is not None:
                listener = Listener(
                    self._dsn, self._schema, self._wakeup, ping=self._q["ping"], seconds=s.timeout
                )
                await listener.start()
                self._listener = listener
        except BaseException:
            await close_pool(pool, CLOSE_GRACE)
            raise
        self._pool = pool
        self._counted_at = float("-inf")
        self._group = GroupCommit(pool, timeout=s.timeout, on_commit=self._committed)
        self._group.start()

    async def _migrate(self, conn: Connection) -> tuple[str, str]:
        await migrate_postgres(conn, self._plan, time.time())
        schema = str(await conn.fetchval(self._q["schema"]))
        return schema, str(await conn.fetchval(self._q["identity"]))

    async def close(self) -> None:
        """Stop taking writes, commit what is queued, then close the connections."""
        if self._group is not None:
            group, self._group = self._group, None
            await group.stop()
            self._commits += group.commits
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
        await pool.expire_connections()
        try:
            return await self._once(pool, work)
        except FAILURES as exc:
            raise unavailable(exc) from exc

    async def _once(self, pool: Pool, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with pool.acquire(timeout=self.settings.timeout) as conn:
            return await work(conn)

    async def _submit(self, apply: Apply[Any, T], payload: object) -> T:
        if self._group is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        return await self._group.submit(apply, payload)

    def _committed(self, delta: int) -> None:
        self._delta += delta

    # -- reads --------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute(self._q["ping"]))

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
        return {row[0]: PausedOn(row[1], row[2]) for row in rows}

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
        token = secrets.randbits(63)
        args = (subscription, int(kind), now, limit, token, now + lease_for)
        rows = await self._run(lambda conn: conn.fetch(self._q["lease"], *args))
        return [pgrows.leased(row, subscription, kind, token) for row in rows]

    # -- writes (group commit) ----------------------------------------------------------------

    async def append(
        self, batch: Sequence[NewEvent], now: float, dedupe_window: float
    ) -> list[bool]:
        if not batch:
            return []
        call = AppendCall(tuple(Stored.of(item) for item in batch), now, dedupe_window)
        return await self._submit(self._append, call)

    async def _append(
        self, conn: Connection, calls: Sequence[AppendCall]
    ) -> list[Done[list[bool]]]:
        stored: set[tuple[int, int]] = set()
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
        row = await conn.fetchrow(self._q["finish"], *args, CHANNEL, self._schema)
        assert row is not None
        ended, queued = int(row[0]), int(row[1])
        # The counts are of the whole statement: the first call carries them.
        return [Done(None, queued - ended), *(Done(None) for _ in calls[1:])]

    async def pause(self, subscription: str, sink: PausedOn, reason: str, now: float) -> None:
        args = (subscription, sink.sink, sink.fingerprint, reason, now)
        await self._submit(_Statement(self._q["pause"]).apply, args)

    async def resume(self, subscription: str) -> None:
        await self._submit(_Statement(self._q["resume"]).apply, (subscription,))

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
