"""The in-memory store's per-key ordering (CONTRACT 5), as the SQL stores keep it: a keyed row
is leasable only as the earliest pending row of its subscription, kind and key; the rows behind
a head are parked (not due) while it is leased or waits for a retry, and the next one is due
again when it ends (park_followers and unpark_next in queries/sqlite.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.store.base import Kind, State

if TYPE_CHECKING:
    from gateway.store.memory import _Row


class MemoryOrdering:
    """Mixed into `MemoryStore`, which provides the rows."""

    if TYPE_CHECKING:
        _rows: dict[int, _Row]

        def _put(self, row: _Row, **changes: object) -> _Row: ...

    @staticmethod
    def _leasable(pending: Sequence[_Row]) -> list[_Row]:
        """The pending rows a lease may take when due: unkeyed ones, and per (subscription,
        kind, ordering key) the earliest pending row, its head."""
        heads: dict[tuple[str, Kind, str | None], int] = {}
        for row in pending:
            if row.ordering_key is not None:
                key = row.key()
                heads[key] = min(heads.get(key, row.id), row.id)
        return [row for row in pending if row.ordering_key is None or heads[row.key()] == row.id]

    def _followers(self, head: _Row) -> list[_Row]:
        return sorted(
            (
                row
                for row in self._rows.values()
                if row.subscription == head.subscription
                and row.kind == head.kind
                and row.ordering_key == head.ordering_key
                and row.state is State.PENDING
                and row.id > head.id
            ),
            key=lambda row: row.id,
        )

    def _park(self, head: _Row, due_at: float, upto: float) -> None:
        """The rows waiting behind a keyed head are not due before `due_at` (a hint: the head
        test of `lease` is what orders)."""
        for row in self._followers(head):
            if row.lease is None and row.due_at <= upto:
                self._put(row, due_at=due_at)

    def _unpark_next(self, head: _Row, now: float) -> None:
        """The head ended: its key's next row, never attempted, is due now."""
        following = self._followers(head)
        if following:
            row = following[0]
            if row.lease is None and row.attempts == 0 and row.due_at > now:
                self._put(row, due_at=now)
