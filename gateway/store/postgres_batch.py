"""The PostgreSQL store's batch lease (`Store.lease_batch`, CONTRACT 5 `mode: batch`), on
`queries/postgres_batch.sql`. Plain reads first, so an idle or lingering subscription takes no
lock; then one transaction under the subscription's advisory lock does the reads again and
marks the rows, so two replicas never split a group or lease one row twice."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from gateway.errors import StoreUnavailable
from gateway.store import grouping, pgrows
from gateway.store.base import Fits, Kind, Leased
from gateway.store.pgapi import Connection, Record

T = TypeVar("T")

BATCH_LOCK = 0x62617463  # first key of the batch lease's advisory lock ("batc")


class PostgresBatches:
    """Mixed into `PostgresStore`, which provides `_run`, `_unlease`, `_q` and `replica`."""

    if TYPE_CHECKING:
        _q: Mapping[str, str]
        replica: str

        async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T: ...

        async def _unlease(self, token: int, now: float) -> None: ...

    async def lease_batch(
        self,
        subscription: str,
        limit: int,
        now: float,
        lease_for: float,
        linger: float,
        fits: Fits,
    ) -> list[Leased]:
        limit = max(limit, 1)

        async def peek(conn: Connection) -> bool:
            if await conn.fetchval(self._q["batch_group_due"], subscription, now) is not None:
                return True
            fresh = await conn.fetch(self._q["batch_fresh_rows"], subscription, now, limit)
            return grouping.ready([row[11] for row in fresh], limit, now, linger)

        if not await self._run(peek):
            return []
        token = secrets.randbits(63)

        async def work(conn: Connection) -> list[Leased]:
            async with conn.transaction():
                await conn.execute(self._q["batch_lock"], BATCH_LOCK, subscription)
                return await self._take(conn, subscription, limit, now, linger, fits, token,
                                        now + lease_for)  # fmt: skip

        try:
            return await self._run(work)
        except StoreUnavailable:
            await self._unlease(token, now)  # rows a lost commit may have leased: due again
            raise

    async def _take(
        self,
        conn: Connection,
        name: str,
        limit: int,
        now: float,
        linger: float,
        fits: Fits,
        token: int,
        until: float,
    ) -> list[Leased]:
        group = await conn.fetchval(self._q["batch_group_due"], name, now)
        rows: list[Record]
        if group is not None:
            rows = list(await conn.fetch(self._q["batch_group_rows"], name, group))
        else:
            fresh = list(await conn.fetch(self._q["batch_fresh_rows"], name, now, limit))
            if not grouping.ready([row[11] for row in fresh], limit, now, linger):
                return []
            events = [_leased(row, name, token, 0).event for row in fresh]
            rows = sorted(fresh[: grouping.take(events, fits)], key=lambda row: int(row[0]))
            group = int(rows[0][0])
        if not rows:
            return []
        ids = [int(row[0]) for row in rows]
        await conn.execute(self._q["batch_mark"], ids, token, until, now, self.replica, group)
        return [_leased(row, name, token, int(group)) for row in rows]


def _leased(row: Record, subscription: str, token: int, group: int) -> Leased:
    """A row read before its lease marked it: its attempt is the one the mark counts."""
    leased = pgrows.leased(row, subscription, Kind.SINK, token)
    return replace(leased, attempt=leased.attempt + 1, batch=group)
