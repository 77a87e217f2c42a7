"""Group commit for SQLite: one task runs every queued unit of work in ONE transaction.

Callers queue units (a function of the connection) and wait. The writer takes everything queued,
runs each unit inside its own savepoint (a failing unit rolls back alone and its caller gets the
error), commits once, then answers every caller and yields to the loop so that more work can
queue up. sqlite3 runs inline on the event loop, and no transaction is ever open across an
`await`, so readers on the same connection always see committed state.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.errors import StoreUnavailable

T = TypeVar("T")
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


class Writer:
    """The one task that writes to a connection. `commits` counts its transactions."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        queries: Mapping[str, str],
        on_commit: Callable[[int], None],
    ) -> None:
        self.commits = 0
        self._conn = conn
        self._q = queries
        self._on_commit = on_commit
        self._queue: list[_Unit[Any]] = []
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="store-writer")

    async def stop(self) -> None:
        """Take no more work, run what is queued, then end the task."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def submit(self, work: Work[T]) -> T:
        if self._stopping or self._task is None:
            raise StoreUnavailable("store unavailable: the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Unit(work, future))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            units, self._queue = self._queue, []
            try:
                self._run([unit for unit in units if not unit.future.done()])
            except Exception as exc:  # a bug must not strand the callers
                _settle(units, [_Done(None, 0, exc)] * len(units))
            await asyncio.sleep(0)

    def _run(self, units: list[_Unit[Any]]) -> None:
        if not units:
            return
        conn = self._conn
        try:
            conn.execute(self._q["begin"])
            done = [self._attempt(unit) for unit in units]
            conn.execute(self._q["commit"])
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute(self._q["rollback"])
            _settle(units, [_Done(None, 0, unavailable(exc))] * len(units))
            return
        self.commits += 1
        self._on_commit(sum(d.delta for d in done if d.error is None))
        _settle(units, done)

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
            return _Done(None, 0, unavailable(exc) if isinstance(exc, sqlite3.Error) else exc)
        conn.execute(self._q["release"])
        return _Done(value, delta, None)


def _settle(units: Sequence[_Unit[Any]], done: Sequence[_Done]) -> None:
    for unit, result in zip(units, done, strict=True):
        if unit.future.done():  # the caller gave up waiting
            continue
        if result.error is None:
            unit.future.set_result(result.value)
        else:
            unit.future.set_exception(result.error)
