"""The SQLite store's appends (`Store.append`) and the handoff (`Store.hand_off`): one event row,
its dedupe key and a delivery row per subscription in the writer's transaction, the rows the
dispatcher takes leased by that same transaction and handed to it once it commits."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import orjson

from gateway.event import Event
from gateway.store.base import Handoff, Kind, Leased, NewEvent

if TYPE_CHECKING:
    from gateway.store.writer import Work

T = TypeVar("T")


class SqliteAppends:
    """Mixed into `SqliteStore`, which provides `_submit`, the queries `_q`, `_wakeup`, and
    the handoff state `_handoff` and `_taken`; its writer calls `_hand_over` after each commit
    and `_aborted` after each rollback."""

    if TYPE_CHECKING:
        _q: Mapping[str, str]
        appended: int
        _wakeup: Callable[[], None]
        _handoff: Handoff | None
        # Rows leased by the appends of the open transaction, for their handoff at commit.
        _taken: list[tuple[Handoff, list[Leased]]]

        async def _submit(self, work: Work[T]) -> T: ...

    async def append(
        self, batch: Sequence[NewEvent], now: float, dedupe_window: float
    ) -> list[bool]:
        if not batch:
            return []
        duplicates, waiting, added = await self._submit(
            lambda conn: self._append(conn, batch, now, dedupe_window)
        )
        self.appended += added
        if waiting:  # rows handed off at commit need no lease
            self._wakeup()
        return duplicates

    def _append(
        self, conn: sqlite3.Connection, batch: Sequence[NewEvent], now: float, window: float
    ) -> tuple[tuple[list[bool], int, int], int]:
        """The unit of one append: ((duplicates, rows left to lease, rows added), rows added)."""
        handoff = self._handoff
        taken: list[Leased] = []
        reserved: list[str] = []  # subscriptions the dispatcher reserved a slot for
        duplicates: list[bool] = []
        added = 0
        try:
            for item in batch:
                event = item.event
                key = {"source": event.source, "id": event.id, "now": now, "cutoff": now - window}
                if conn.execute(self._q["dedupe_claim"], key).rowcount != 1:
                    duplicates.append(True)
                    continue
                row = {
                    **key,
                    "type": event.type,
                    "attrs": orjson.dumps(event.attributes),
                    "data": event.data,
                    "kind": int(event.kind),
                    "producer": item.producer,
                }
                seq = conn.execute(self._q["event_insert"], row).lastrowid
                names = item.rows()
                rest = []
                for name, ordering_key in names.items():
                    # Handoff: unordered rows the dispatcher has a slot for are leased here.
                    until = None
                    if handoff is not None and ordering_key is None:
                        until = handoff.take(name, now)
                    if until is None:
                        rest.append({"seq": seq, "subscription": name,
                                     "ordering_key": ordering_key, "now": now})  # fmt: skip
                        continue
                    reserved.append(name)
                    taken.append(_insert_leased(self._q, conn, seq, name, event, now, until))
                conn.executemany(self._q["delivery_insert"], rest)
                added += len(names)
                duplicates.append(False)
        except BaseException:
            if handoff is not None and reserved:
                handoff.dropped(reserved)  # rolled back with this unit
            raise
        if handoff is not None and taken:
            self._taken.append((handoff, taken))
        return (duplicates, added - len(taken), added), added

    def hand_off(self, handoff: Handoff | None) -> None:
        self._handoff = handoff

    def _hand_over(self) -> None:
        """The transaction committed: the rows its appends leased go to their handoff."""
        taken, self._taken = self._taken, []
        for handoff, rows in taken:
            handoff.taken(rows)

    def _aborted(self) -> None:
        """The transaction rolled back: the rows its appends leased were never written."""
        taken, self._taken = self._taken, []
        for handoff, rows in taken:
            handoff.dropped([row.subscription for row in rows])


def _insert_leased(
    queries: Mapping[str, str], conn: sqlite3.Connection, seq: int | None, name: str,
    event: Event, now: float, until: float,
) -> Leased:
    """A delivery row leased by the append itself, as the dispatcher's `take` asked."""
    from gateway.store.sqlite import REPLICA

    token = secrets.randbits(63)
    params = {"seq": seq, "subscription": name, "until": until, "lease": token,
              "replica": REPLICA, "now": now}  # fmt: skip
    ident = conn.execute(queries["delivery_insert_leased"], params).lastrowid
    assert ident is not None
    # The event as received, without the parsed data kept for validation.
    kept = Event(event.attributes, event.data, event.kind)
    return Leased(ident, name, Kind.SINK, 1, token, kept, now)
