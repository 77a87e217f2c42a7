"""The in-memory store's batch lease (`Store.lease_batch`, CONTRACT 5 `mode: batch`), with the
same semantics as the SQL stores'."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gateway.store import grouping
from gateway.store.base import Fits, Kind, Leased, Opened, State

if TYPE_CHECKING:
    from gateway.store.memory import _Row, _Stored


class MemoryBatches:
    """Mixed into `MemoryStore`, which provides its rows, events, tokens and `_put`."""

    if TYPE_CHECKING:
        _rows: dict[int, _Row]
        _events: dict[int, _Stored]
        _breakers: dict[str, Opened]
        _tokens: Iterator[int]

        def _check(self) -> None: ...

        def _put(self, row: _Row, **changes: Any) -> _Row: ...

        def _mark(
            self, row: _Row, token: int, now: float, lease_for: float, **more: object
        ) -> _Row: ...

        def _leased(self, row: _Row, token: int) -> Leased: ...

    async def lease_batch(
        self,
        subscription: str,
        limit: int,
        now: float,
        lease_for: float,
        linger: float,
        fits: Fits,
    ) -> list[Leased]:

        self._check()
        held = self._breakers.get(subscription)
        if held is not None and held.until > now:
            return []  # a stored open breaker holds SINK rows, as in `lease`
        pending = [
            row
            for row in self._rows.values()
            if row.subscription == subscription
            and row.kind is Kind.SINK
            and row.state is State.PENDING
        ]
        groups = sorted((row.due_at, row.id, row.batch) for row in pending
                        if row.batch is not None and row.due_at <= now)  # fmt: skip
        if groups:
            group = groups[0][2]
            rows = [row for row in pending if row.batch == group]
        else:
            fresh = sorted(
                (row for row in pending
                 if row.batch is None and row.due_at <= now and _in_turn(row, pending)),
                key=lambda row: (row.due_at, row.id),
            )[: max(limit, 1)]  # fmt: skip
            if not grouping.ready([row.due_at for row in fresh], limit, now, linger):
                return []
            events = [self._events[row.event_seq].event() for row in fresh]
            rows = fresh[: grouping.take(events, fits)]
            group = min(row.id for row in rows)
        token = next(self._tokens)
        leased: list[Leased] = []
        for row in sorted(rows, key=lambda row: row.id):
            leased.append(self._leased(self._mark(row, token, now, lease_for, batch=group), token))
        return leased


def _in_turn(row: _Row, pending: list[_Row]) -> bool:
    """Per-key ordering (CONTRACT 5): every earlier pending row of the key is ungrouped and
    sorts before `row`, so a batch holds a prefix of each key (as the SQL stores decide)."""
    if row.ordering_key is None:
        return True
    return not any(
        p.ordering_key == row.ordering_key and p.id < row.id
        and (p.batch is not None or p.due_at > row.due_at)
        for p in pending
    )  # fmt: skip
