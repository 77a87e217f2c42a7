"""Readiness of the write path, one design for both SQL stores (`Store.ready`).

A store is not ready when its most recent write failed less than `RECENT` seconds ago (a full
disk, a lost database: no write has succeeded since), or when its group-commit task has been
busy with one batch for longer than the readiness deadline (a lock, a hung connection).
"""

from __future__ import annotations

import time

from gateway.errors import StoreUnavailable

RECENT = 10.0  # seconds a failed write keeps the store not ready, unless a write succeeds


class WriteHealth:
    """What the last writes did: the group-commit task reports, `check` judges."""

    def __init__(self, recent: float = RECENT) -> None:
        self._recent = recent
        self._failed_at: float | None = None
        self._failure = ""
        self._busy_since: float | None = None

    def started(self) -> None:
        self._busy_since = time.monotonic()

    def ended(self) -> None:
        self._busy_since = None

    def succeeded(self) -> None:
        self._failed_at = None

    def failed(self, detail: str) -> None:
        self._failed_at = time.monotonic()
        self._failure = detail

    def check(self, deadline: float) -> None:
        """Raise `StoreUnavailable` when recent writes failed or a batch is stuck."""
        now = time.monotonic()
        if self._failed_at is not None and now - self._failed_at < self._recent:
            raise StoreUnavailable(f"store unavailable: recent writes failed ({self._failure})")
        if self._busy_since is not None and now - self._busy_since > deadline:
            raise StoreUnavailable(
                f"store unavailable: a commit has been waiting {now - self._busy_since:.1f}s"
            )
