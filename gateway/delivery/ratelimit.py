"""Rate limits per subscription (CONTRACT 5, `rate_limit: 50/s`): token buckets.

The bucket (`gateway.store.buckets`): `rate` tokens a second, at most one second's worth (at
least 1). The dispatcher takes one token per attempt before leasing.

Shared by replicas: a replica does not keep a bucket of its own; it takes small budgets from
the store's bucket (`Store.take_tokens`, one atomic statement on PostgreSQL) and spends them
locally, so all replicas together never exceed the rate over time. A replica holds at most a
tenth of a second's worth (at least 1), which bounds the burst beyond the bucket's capacity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gateway.config.model import Subscription
from gateway.store.base import Store
from gateway.store.buckets import capacity

# A replica asks the store for at most this share of a second's tokens at a time.
BUDGET_SHARE = 0.1


def holding(rate: float) -> int:
    """The most tokens one replica holds unspent."""
    return max(1, math.ceil(rate * BUDGET_SHARE))


class Rates:
    """The dispatcher's view: how many attempts each rate-limited subscription may start."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rates: dict[str, float] = {}
        self._held: dict[str, int] = {}  # tokens taken from the store, not spent yet
        self._starved: dict[str, float] = {}  # subscriptions out of tokens: when to look again

    def reconfigure(self, subscriptions: Iterable[Subscription]) -> None:
        self._rates = {
            sub.name: sub.delivery.rate_limit
            for sub in subscriptions
            if sub.delivery.rate_limit is not None
        }
        self._held = {name: n for name, n in self._held.items() if name in self._rates}
        self._starved = {name: t for name, t in self._starved.items() if name in self._rates}

    def limited(self, name: str) -> bool:
        return name in self._rates

    async def allow(self, name: str, want: int, now: float) -> int:
        """Up to `want` attempts `name` may start now; give back unused ones with `unused`."""
        rate = self._rates.get(name)
        if rate is None:
            return want
        most = holding(rate)
        want = min(want, most)
        held = self._held.get(name, 0)
        if held < want:
            held += await self._store.take_tokens(name, rate, capacity(rate), most - held, now)
        granted = min(held, want)
        self._held[name] = held - granted
        if granted < want:
            self._starved[name] = now + 1.0 / rate
        else:
            self._starved.pop(name, None)
        return granted

    def unused(self, name: str, count: int) -> None:
        rate = self._rates.get(name)
        if count > 0 and rate is not None:
            self._held[name] = min(self._held.get(name, 0) + count, holding(rate))

    def next_token(self, now: float) -> float | None:
        """When a subscription that ran out of tokens may have one again."""
        times = list(self._starved.values())
        return max(min(times), now) if times else None

    def waiting(self, name: str) -> bool:
        return name in self._starved
