"""The token bucket of rate limits (CONTRACT 5, `rate_limit`), pure, with the clock passed in.

Stores owned by one process (SQLite, memory) keep their buckets in process with this; the
PostgreSQL store keeps the same arithmetic in one atomic statement (`rate_take`).
"""

from __future__ import annotations

import math


def capacity(rate: float) -> float:
    return max(1.0, rate)


class Bucket:
    """A token bucket, full at first."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = capacity(rate)
        self.at = now

    def take(self, want: int, now: float) -> int:
        """Take up to `want` whole tokens; return how many were taken."""
        self.tokens = min(capacity(self.rate), self.tokens + max(now - self.at, 0.0) * self.rate)
        self.at = max(self.at, now)
        got = min(want, math.floor(self.tokens))
        self.tokens -= got
        return max(got, 0)

    def wait(self, now: float) -> float:
        """Seconds until a whole token is there."""
        have = min(capacity(self.rate), self.tokens + max(now - self.at, 0.0) * self.rate)
        return 0.0 if have >= 1 else (1 - have) / self.rate


class Buckets:
    """The buckets of the subscriptions of a store owned by one process (SQLite, memory)."""

    def __init__(self) -> None:
        self._by_subscription: dict[str, Bucket] = {}

    def take(self, subscription: str, rate: float, want: int, now: float) -> int:
        """`Store.take_tokens` for such a store: a changed rate starts a fresh, full bucket."""
        bucket = self._by_subscription.get(subscription)
        if bucket is None or bucket.rate != rate:
            bucket = self._by_subscription[subscription] = Bucket(rate, now)
        return bucket.take(want, now)
