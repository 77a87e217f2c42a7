"""What every store's `lease_batch` decides alike (batch delivery, CONTRACT 5): whether ungrouped
due rows make a batch now (`linger`) and how many of them it takes (`fits`)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.event import Event
from gateway.store.base import Fits


def ready(due: Sequence[float], limit: int, now: float, linger: float) -> bool:
    """A batch goes when `limit` rows are due, or when the oldest has been due `linger`."""
    if not due:
        return False
    return len(due) >= limit or min(due) <= now - linger


def take(events: Sequence[Event], fits: Fits) -> int:
    """How many of the leading `events` the batch takes: at least one, so that an event larger
    than the byte bound goes alone and is never held back."""
    return max(1, min(len(events), fits(events))) if events else 0
