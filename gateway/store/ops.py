"""What operators read and change in a store (CONTRACT 6): per-subscription counts, dead letters
by filter, the events of a replay window, one event's deliveries with every attempt, and the
rows of removed subscriptions. Every store implements these beside `Store`'s hot path."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.event import Event

REMOVED = "removed"  # dead-letter reason of a removed subscription's rows past retention


@dataclass(frozen=True, slots=True)
class Counts:
    """One subscription's rows (SINK rows only; notices to the dead-letter sink are apart)."""

    backlog: int = 0
    oldest_pending_at: float | None = None  # when the oldest pending row was created
    delivered: int = 0
    failed: int = 0  # failed attempts
    dead_letters: int = 0
    last_error: str | None = None  # of the latest failed attempt: its error, or "HTTP <status>"


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """Dead letters of one subscription (or all), dead-lettered within [since, until), of the
    events with these ids (any when empty); pages by delivery id, after `after`."""

    subscription: str | None = None
    since: float | None = None
    until: float | None = None
    event_ids: tuple[str, ...] = ()
    after: int = 0
    limit: int = 500


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event: Event
    received_at: float
    producer: str | None = None


@dataclass(frozen=True, slots=True)
class TriedAt:
    """One entry of the attempts log."""

    attempt: int
    at: float
    status: int | None
    latency_ms: float
    error: str | None


@dataclass(frozen=True, slots=True)
class RecentAttempt:
    """One attempt to a subscription, with the event it carried (newest first in a listing)."""

    delivery: int
    source: str
    id: str
    tried: TriedAt


@dataclass(frozen=True, slots=True)
class DeliveryHistory:
    id: int
    subscription: str
    kind: int  # base.Kind
    state: int  # base.State
    attempts: int
    due_at: float
    created_at: float
    finished_at: float | None
    last_status: int | None
    last_error: str | None
    reason: str | None  # dead-letter reason
    tries: tuple[TriedAt, ...] = ()


@dataclass(frozen=True, slots=True)
class EventHistory:
    stored: StoredEvent
    deliveries: tuple[DeliveryHistory, ...]


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What one replica reports of itself: the config generation it runs and since when, its
    last refused reload, and when it last said so."""

    replica: str
    generation: int
    loaded_at: float
    last_error: str | None
    seen_at: float


def error_text(status: int | None, error: str | None) -> str:
    """How a failed attempt is shown: its error, else its HTTP status."""
    if error:
        return error
    return f"HTTP {status}" if status is not None else "no response"
