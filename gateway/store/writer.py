"""Group commit for SQLite: one task runs every queued unit of work in ONE transaction.

Callers queue units (a function of the connection) and wait. The writer takes everything queued,
runs them in one transaction, commits once, then answers every caller and yields to the loop so
that more work can queue up. A failing unit rolls back alone and its caller gets the error: the
units first run without savepoints (a savepoint per unit cost about a quarter of the store's
time per appended event); if one raises, the transaction is rolled back and every unit runs
again, each inside its own savepoint. So a unit may run twice: it must be a function of the
connection, with no effect outside it that a rollback (`on_abort`) does not undo. sqlite3 runs
inline on the event loop, and no transaction is ever open across an `await`, so readers on the
same connection always see committed state.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.errors import StoreUnavailable
from gateway.store.batching import Batcher

T = TypeVar("T")
# Loop turns the writer lets go by before a batch while busy (`Batcher`): a turn reads the
# requests that arrived meanwhile; more than two gained nothing measurable.
LINGER = 2
# A unit of work: its result, and how it changes the count of pending rows once committed.
Work = Callable[[sqlite3.Connection], tuple[T, int]]


def unavailable(exc: BaseException) -> StoreUnavailable:
    """Wrap a foreign error at the store boundary, keeping it as the cause."""
    error = StoreUnavailable(f"store unavailable: {exc}")
    error.__cause__ = exc
    return error


@dataclass(frozen=True, slots=True)
class _Unit(Generic[T]):
    work: Work[T]
    future: asyncio.Future[T]


@dataclass(frozen=True, slots=True)
class _Done:
    value: Any
    delta: int
    error: BaseException | None


class Writer(Batcher[_Unit[Any]]):
    """The one task that writes to a connection. `commits` counts its transactions."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        queries: Mapping[str, str],
        on_commit: Callable[[int], None],
        *,
        on_abort: Callable[[], None] = lambda: None,
        limit: int | None = None,
    ) -> None:
        super().__init__("store-writer", limit=limit, linger=LINGER)
        self._conn = conn
        self._q = queries
        self._on_commit = on_commit
        self._on_abort = on_abort  # the transaction rolled back after units had run

    async def submit(self, work: Work[T]) -> T:
        return await self.queue(work)

    def queue(self, work: Work[T]) -> asyncio.Future[T]:
        """Queue `work` now (in order with every unit queued before it); its future."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Unit(work, future))
        return future

    async def _process(self, units: list[_Unit[Any]]) -> None:
        try:
            self._run(units)
        except Exception as exc:  # a bug must not strand the callers
            self._on_abort()
            self.health.failed(str(exc))
            _settle(units, [_Done(None, 0, exc)] * len(units))
        await asyncio.sleep(0)

    def _run(self, units: list[_Unit[Any]]) -> None:
        if not units:
            return
        conn = self._conn
        started = time.perf_counter()
        try:
            conn.execute(self._q["begin"])
            done = self._together(units)
            if done is None:  # a unit failed: again, each unit in a savepoint of its own
                if conn.in_transaction:
                    conn.execute(self._q["rollback"])
                self._on_abort()
                conn.execute(self._q["begin"])
                done = [self._attempt(unit) for unit in units]
            conn.execute(self._q["commit"])
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute(self._q["rollback"])
            self._on_abort()
            self.health.failed(str(exc))
            _settle(units, [_Done(None, 0, unavailable(exc))] * len(units))
            return
        self.commits += 1
        if self.observe is not None:
            self.observe(time.perf_counter() - started)
        failed = [d.error for d in done if isinstance(d.error, sqlite3.OperationalError)]
        if failed:  # a full disk or an I/O error hit a unit, not its data
            self.health.failed(str(failed[-1]))
        else:
            self.health.succeeded()
        self._on_commit(sum(d.delta for d in done if d.error is None))
        _settle(units, done)

    def _together(self, units: list[_Unit[Any]]) -> list[_Done] | None:
        """Every unit without a savepoint; None as soon as one raises (nothing is undone here)."""
        done = []
        for unit in units:
            try:
                value, delta = unit.work(self._conn)
            except Exception:
                return None
            done.append(_Done(value, delta, None))
        return done

    def _attempt(self, unit: _Unit[Any]) -> _Done:
        conn = self._conn
        conn.execute(self._q["savepoint"])
        try:
            value, delta = unit.work(conn)
        except Exception as exc:
            if not conn.in_transaction:  # SQLite rolled the whole transaction back
                raise sqlite3.OperationalError(f"transaction rolled back: {exc}") from exc
            conn.execute(self._q["rollback_unit"])
            conn.execute(self._q["release"])
            return _Done(None, 0, exc)
        conn.execute(self._q["release"])
        return _Done(value, delta, None)


def _settle(units: Sequence[_Unit[Any]], done: Sequence[_Done]) -> None:
    for unit, result in zip(units, done, strict=True):
        if unit.future.done():  # the caller gave up waiting
            continue
        if result.error is None:
            unit.future.set_result(result.value)
        elif isinstance(result.error, sqlite3.Error):
            unit.future.set_exception(unavailable(result.error))
        else:
            unit.future.set_exception(result.error)
