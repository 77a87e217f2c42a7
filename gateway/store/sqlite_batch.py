"""The SQLite store's batch lease (`Store.lease_batch`, CONTRACT 5 `mode: batch`), on
`queries/sqlite_batch.sql`. Reads first, so an idle or lingering subscription costs no
transaction; the writer then does the same reads again and marks the rows."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.store import grouping
from gateway.store.base import Fits, Kind, Leased

if TYPE_CHECKING:
    from gateway.store.writer import Work

T = TypeVar("T")


class SqliteBatches:
    """Mixed into `SqliteStore`, which provides `_read`, `_submit` and the queries `_q`."""

    if TYPE_CHECKING:
        _q: Mapping[str, str]

        def _read(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

        async def _submit(self, work: Work[T]) -> T: ...

    async def lease_batch(
        self,
        subscription: str,
        limit: int,
        now: float,
        lease_for: float,
        linger: float,
        fits: Fits,
    ) -> list[Leased]:
        params = {"subscription": subscription, "now": now, "limit": max(limit, 1)}
        if not self._read("batch_group_due", params):
            due = [row[-1] for row in self._read("batch_fresh_rows", params)]
            if not grouping.ready(due, limit, now, linger):
                return []

        def work(conn: sqlite3.Connection) -> tuple[list[Leased], int]:
            return self._lease_batch(conn, params, now + lease_for, linger, fits), 0

        return await self._submit(work)

    def _lease_batch(
        self,
        conn: sqlite3.Connection,
        params: dict[str, Any],
        until: float,
        linger: float,
        fits: Fits,
    ) -> list[Leased]:
        from gateway.store.sqlite import REPLICA, _leased

        name, now = params["subscription"], params["now"]
        found = conn.execute(self._q["batch_group_due"], params).fetchone()
        token = secrets.randbits(63)
        rows: Sequence[Sequence[Any]]
        if found is not None:
            group = int(found[0])
            rows = conn.execute(
                self._q["batch_group_rows"], {"subscription": name, "batch": group}
            ).fetchall()
        else:
            fresh = conn.execute(self._q["batch_fresh_rows"], params).fetchall()
            if not grouping.ready([row[-1] for row in fresh], params["limit"], now, linger):
                return []
            leased = [_leased(row[:-1], name, Kind.SINK, token) for row in fresh]
            rows = sorted(
                (row[:-1] for row in fresh[: grouping.take([r.event for r in leased], fits)]),
                key=lambda row: int(row[0]),
            )
            group = int(rows[0][0])
        conn.executemany(
            self._q["batch_mark"],
            [
                {"id": row[0], "lease": token, "until": until, "now": now,
                 "replica": REPLICA, "batch": group}
                for row in rows
            ],
        )  # fmt: skip
        return [replace(_leased(row, name, Kind.SINK, token), batch=group) for row in rows]
