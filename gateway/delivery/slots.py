"""Fair sharing of the gateway-wide delivery slots (`dispatch.max_in_flight`) between subscriptions.

First come, first served lets slow subscribers take every slot: their attempts last as long as
their timeout, so they pile up while a healthy subscription's attempts, which free their slot at
once, find none. Here every subscription is owed slots: an *active* one (an attempt in flight
now or lately) its share of what the idle ones do not need, an idle one a single slot, so that
an event for it starts at once. A subscription may go past what it is owed only with slots that
nobody is owed: a slow one takes what the others leave, never what they are owed. Attempts
already running are never taken back; a share is restored as they end.

Pure bookkeeping, no I/O: the dispatcher makes a `plan` per pass over the subscriptions, asks it
for `room` before leasing, and calls `take`/`give` per attempt started/ended.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

# A subscription that had an attempt in flight this recently is active: it keeps its share
# between two events instead of dropping back into the idle pool.
ACTIVE_FOR = 10.0


class Slots:
    def __init__(self, total: int, caps: Mapping[str, int]) -> None:
        """`total`: the gateway-wide bound; `caps`: each subscription's own `max_in_flight`."""
        self.total = total
        self._caps = dict(caps)
        self._used: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self.in_flight = 0

    def reconfigure(self, caps: Mapping[str, int]) -> None:
        """New subscriptions (a reload); counts of those in flight are kept."""
        self._caps = dict(caps)

    def take(self, name: str, now: float) -> None:
        self._used[name] += 1
        self._last[name] = now
        self.in_flight += 1

    def give(self, name: str, now: float) -> None:
        self._used[name] -= 1
        self._last[name] = now
        self.in_flight -= 1

    def plan(self, now: float) -> Plan:
        """What each subscription may start now; one plan serves a whole pass over them."""
        active = [n for n in self._caps if self._active(n, now)]
        idle = [n for n in self._caps if n not in set(active)]
        share = max(1, (self.total - len(idle)) // max(1, len(active)))
        owed = {n: max(0, min(share, self._caps[n]) - self._used[n]) for n in active}
        owed.update((n, min(1, self._caps[n])) for n in idle)
        return Plan(self.total - self.in_flight, owed)

    def _active(self, name: str, now: float) -> bool:
        return self._used[name] > 0 or now - self._last.get(name, float("-inf")) < ACTIVE_FOR


class Plan:
    """The slots of one pass: `room` before leasing for a subscription, `took` after."""

    def __init__(self, free: int, owed: dict[str, int]) -> None:
        self.free = free
        self._owed = owed  # per subscription: slots it is owed and not using
        self._owed_total = sum(owed.values())

    def room(self, name: str) -> int:
        """How many more attempts `name` may start (its own `max_in_flight` aside): what it is
        owed first; past that, only slots nobody else is owed."""
        mine = self._owed.get(name, 0)
        others = self._owed_total - mine
        return max(0, min(self.free, max(mine, self.free - others)))

    def took(self, name: str, count: int) -> None:
        self.free -= count
        used = min(count, self._owed.get(name, 0))
        if used:
            self._owed[name] -= used
            self._owed_total -= used
