"""Group commit for PostgreSQL: one task commits every queued unit of work in ONE transaction.

Callers queue a unit (a payload and the statement that applies it) and wait. The task takes
everything queued, and in one transaction on one pooled connection applies the units of each
statement together (`Apply` gets all their payloads: one round trip for all the appends of the
group), commits once, then answers every caller. While it commits, new units queue up for the
next group.

Failure isolation: when the merged statements fail, the transaction is rolled back and the
group runs again with every unit inside its own savepoint, so a failing unit fails alone and
its caller gets the error. When the connection was lost before COMMIT was sent, nothing was
committed and the whole group is tried once more on a fresh connection. A timeout is not a lost
connection: the group fails at once (503) and the pool is left alone. Once COMMIT succeeded the
group is never run again: a failure giving the connection back to the pool drops only that
connection (the pool closes it) and the callers get their results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.store.batching import Batcher
from gateway.store.pgapi import FAILURES, Connection, Pool, is_lost, is_timeout, unavailable

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Done(Generic[R]):
    """What one unit produced, once its group commits."""

    value: R
    delta: int = 0  # change of the number of pending delivery rows


# Called with the connection right after COMMIT, before it goes back to the pool (tests).
AfterCommit = Callable[[Connection], Awaitable[None]]

# Applies the payloads of several units in order, in the open transaction; one Done per payload.
Apply = Callable[[Connection, Sequence[P]], Awaitable[list[Done[R]]]]


@dataclass(frozen=True, slots=True)
class _Unit:
    apply: Apply[Any, Any]
    payload: Any
    future: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Result:
    done: Done[Any] | None
    error: BaseException | None = None


# What a unit's statement can raise: driver errors, and data the driver cannot encode.
_UNIT_ERRORS: tuple[type[BaseException], ...] = (*FAILURES, ValueError, TypeError)


class _Lost(Exception):
    """The connection went away before COMMIT: the group may run again."""


class _Fallback(Exception):
    """A merged statement failed: run the group again, one savepoint per unit."""


class GroupCommit(Batcher[_Unit]):
    """One task that writes groups of units. `commits` counts its transactions, `resets` the
    times it marked every pooled connection for replacement."""

    def __init__(
        self,
        pool: Pool,
        *,
        timeout: float,
        on_commit: Callable[[int], None],
        name: str = "store-group-commit",
        limit: int | None = None,
    ) -> None:
        super().__init__(name, limit=limit)
        self._pool = pool
        self._timeout = timeout
        self._on_commit = on_commit
        self.resets = 0
        self.after_commit: AfterCommit | None = None

    async def submit(self, apply: Apply[P, R], payload: P, *, deadline: float) -> R:
        """Queue a unit and wait for its group's commit, at most `deadline` seconds (then
        `TimeoutError`; the unit is dropped unless its group already runs)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._enqueue(_Unit(apply, payload, future))  # queued now, in the caller's order
        return await asyncio.wait_for(future, deadline)

    async def _process(self, units: list[_Unit]) -> None:
        try:
            results = await self._run(units)
        except FAILURES as exc:
            error = unavailable(exc)
            self.health.failed(error.detail)
            results = [_Result(None, error)] * len(units)
        except Exception as exc:  # StoreUnavailable, or a bug: never strand the callers
            self.health.failed(str(exc))
            results = [_Result(None, exc)] * len(units)
        _settle(units, results)

    async def _run(self, units: list[_Unit]) -> list[_Result]:
        if not units:
            return []
        try:
            return await self._group(units)
        except _Lost:
            pass  # nothing was committed: once more, on a fresh connection
        self.resets += 1
        await self._pool.expire_connections()
        try:
            return await self._group(units)
        except _Lost as lost:
            cause = lost.__cause__ or lost
            raise unavailable(cause) from cause

    async def _group(self, units: list[_Unit]) -> list[_Result]:
        results: list[_Result] | None = None
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                results = await self._transaction(conn, units, merged=True)
                if results is None:  # a merged statement failed: isolate the failing unit(s)
                    results = await self._transaction(conn, units, merged=False)
                if self.after_commit is not None:
                    await self.after_commit(conn)
        except FAILURES as exc:  # could not get a connection, or could not give it back
            if results is not None:
                return results  # committed: the pool has dropped the connection it could not reset
            if is_lost(exc):
                raise _Lost() from exc
            raise
        assert results is not None
        return results

    async def _transaction(
        self, conn: Connection, units: list[_Unit], *, merged: bool
    ) -> list[_Result] | None:
        """One transaction over all units; None when a merged statement failed (rolled back)."""
        committing = False
        started = time.perf_counter()
        try:
            async with conn.transaction():
                try:
                    if merged:
                        results = await self._merged(conn, units)
                    else:
                        results = await self._isolated(conn, units)
                except _UNIT_ERRORS as exc:
                    if merged and _unit_failure(exc):
                        raise _Fallback() from exc
                    raise
                committing = True
        except _Fallback:
            return None
        except FAILURES as exc:
            if is_lost(exc) and not committing:
                raise _Lost() from exc
            # The outcome of a COMMIT cut short is unknown: it is never repeated.
            raise unavailable(exc) from exc
        self.commits += 1
        if self.observe is not None:
            self.observe(time.perf_counter() - started)
        self.health.succeeded()
        self._on_commit(sum(r.done.delta for r in results if r.done is not None))
        return results

    async def _merged(self, conn: Connection, units: list[_Unit]) -> list[_Result]:
        """Each statement once, over the payloads of all its units, in queue order."""
        by_apply: dict[Apply[Any, Any], list[int]] = {}
        for index, unit in enumerate(units):
            by_apply.setdefault(unit.apply, []).append(index)
        results: list[_Result] = [_Result(None)] * len(units)
        for apply, indexes in by_apply.items():
            done = await apply(conn, [units[i].payload for i in indexes])
            for index, one in zip(indexes, done, strict=True):
                results[index] = _Result(one)
        return results

    async def _isolated(self, conn: Connection, units: list[_Unit]) -> list[_Result]:
        """Each unit alone inside a savepoint: a failing unit rolls back alone."""
        results: list[_Result] = []
        for unit in units:
            try:
                async with conn.transaction():  # nested: a savepoint
                    [done] = await unit.apply(conn, [unit.payload])
            except _UNIT_ERRORS as exc:
                if not _unit_failure(exc):
                    raise
                error = unavailable(exc) if isinstance(exc, FAILURES) else exc
                results.append(_Result(None, error))
                continue
            results.append(_Result(done))
        return results


def _unit_failure(exc: BaseException) -> bool:
    """A failure that belongs to the statement or its data, not to the connection or time."""
    return not is_lost(exc) and not is_timeout(exc)


def _settle(units: Sequence[_Unit], results: Sequence[_Result]) -> None:
    for unit, result in zip(units, results, strict=True):
        if unit.future.done():  # the caller gave up waiting
            continue
        if result.error is not None:
            unit.future.set_exception(result.error)
        else:
            assert result.done is not None
            unit.future.set_result(result.done.value)
