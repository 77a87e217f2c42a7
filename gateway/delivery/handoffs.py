"""The dispatcher's side of the handoff (`Store.hand_off`): which rows this process appends start
at once, leased by the append's own transaction, and how their slots are reserved, used and
given back. A row is taken only while its subscription has nothing older due, so rows still go
out in arrival order."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gateway.config.model import Subscription
from gateway.delivery import batches
from gateway.store.base import Handoff, Kind, Leased

if TYPE_CHECKING:
    from gateway.delivery.breakers import Breakers
    from gateway.delivery.pressure import Pressure
    from gateway.delivery.ratelimit import Rates
    from gateway.delivery.slots import Plan, Slots

# A lease outlives the attempt's timeout by this much before another holder may take the row.
LEASE_MARGIN = 30.0


class Handoffs:
    """Mixed into `Dispatcher`, which provides the state named below. `_plan` is the slots of
    its last pass; `_caught_up` the subscriptions that had nothing more due then."""

    if TYPE_CHECKING:
        _subs: dict[str, Subscription]
        _plan: Plan | None
        _caught_up: set[str]
        _stopping: asyncio.Event
        _rates: Rates
        _breakers: Breakers
        _inflight: Counter[tuple[str, Kind]]
        _slots: Slots
        _pressure: Pressure
        _abandoned: list[Leased]
        _wake: asyncio.Event
        _clock: Callable[[], float]

        def _held(self, sub: Subscription, kind: Kind, now: float) -> bool: ...

        def _room(self, sub: Subscription, kind: Kind, plan: Plan) -> int: ...

        def _reserve(self, name: str, kind: Kind) -> None: ...

        def _spawn(self, sub: Subscription, row: Leased, lease_ends: float) -> None: ...

    def _handoff(self) -> Handoff:
        return Handoff(self._take, self._taken, self._dropped)

    def _take(self, name: str, now: float) -> float | None:
        """`Handoff.take`, inside the append's transaction: whether a new unordered row of
        `name` starts at once (its slot reserved here), and until when its lease runs. Only
        while nothing older of `name` is due, so rows still go out in arrival order; never in
        batch mode, with a rate limit, or while the subscription is held back."""
        sub = self._subs.get(name)
        plan = self._plan
        if sub is None or plan is None or self._stopping.is_set() or name not in self._caught_up:
            return None
        if self._pressure.yielding:  # ingest first: the row waits for a (spaced-out) lease,
            self._caught_up.discard(name)  # and later rows wait behind it
            return None
        if (
            batches.handles(sub, Kind.SINK)
            or self._rates.limited(name)
            or self._breakers.is_open(name)
            or self._held(sub, Kind.SINK, now)
            or self._room(sub, Kind.SINK, plan) <= 0
        ):
            self._caught_up.discard(name)  # this row waits in the store: lease it first
            return None
        plan.took(name, 1)
        self._reserve(name, Kind.SINK)
        return now + sub.delivery.timeout + LEASE_MARGIN

    def _taken(self, rows: Sequence[Leased]) -> None:
        """`Handoff.taken`: the rows committed; each starts its attempt in its reserved slot."""
        for row in rows:
            sub = self._subs.get(row.subscription)
            if sub is None or self._stopping.is_set():  # removed by a reload, or stopping
                self._give_back(row)
                continue
            self._spawn(sub, row, self._clock() + sub.delivery.timeout + LEASE_MARGIN)

    def _dropped(self, names: Sequence[str]) -> None:
        """`Handoff.dropped`: the append rolled back; the slots reserved for it are free."""
        now = self._clock()
        for name in names:
            self._inflight[(name, Kind.SINK)] -= 1
            self._slots.give(name, now)
        self._wake.set()

    def _give_back(self, row: Leased) -> None:
        """A handed-off row that will not be attempted: its lease ends now, its slot too."""
        self._inflight[(row.subscription, row.kind)] -= 1
        self._slots.give(row.subscription, self._clock())
        self._abandoned.append(row)

