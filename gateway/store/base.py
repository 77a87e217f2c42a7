"""The `Store` protocol: durable events, one delivery row per (event, subscription), leases.

Every store (SQLite, in-memory for tests, PostgreSQL later) implements this protocol and passes
the same contract suite (`tests/unit/test_store_contract.py`). Times are float Unix seconds
passed in by the caller, so that stores are deterministic under test.

Delivery life cycle: a row is PENDING with a `due_at`. `lease` hands out due rows, counts the
attempt and pushes `due_at` to the lease's expiry, so a row whose holder crashed simply becomes
due again. `finish` applies outcomes, fenced by the lease token so a stale holder cannot
overwrite a newer attempt's result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

import orjson

from gateway import redact
from gateway.event import AttributeValue, DataKind, Event

if TYPE_CHECKING:
    from gateway.store.ops import (
        Counts,
        DeadLetterQuery,
        EventHistory,
        RecentAttempt,
        ReplicaState,
        StoredEvent,
    )

# Why a subscription is paused: its sink answered 410 (ends when the sink changes, or on
# `resume`), or an operator paused it (ends only on `resume`).
PAUSED_GONE = "410 Gone"
PAUSED_OPERATOR = "operator"


def stored_event(attrs: bytes, data: bytes | None, kind: int) -> Event:
    """An event as the stores keep it: attributes as JSON, data bytes, its DataKind."""
    attributes: dict[str, AttributeValue] = orjson.loads(attrs)
    return Event(attributes=attributes, data=data, kind=DataKind(kind))


class State(IntEnum):
    PENDING = 0
    DELIVERED = 1
    DEAD = 2


class Kind(IntEnum):
    """What a delivery row sends: the event to the sink, or a dead-letter notice."""

    SINK = 0
    DEAD_LETTER = 1


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append and the subscriptions it was routed to."""

    event: Event
    subscriptions: tuple[str, ...]
    # Per-key ordering (CONTRACT 5): the `ordering_key` of each subscription's row, in the
    # order of `subscriptions`; None when no row is ordered (`gateway.routing.ordering`).
    ordering_keys: tuple[str | None, ...] | None = None
    producer: str | None = None  # the authenticated producer that published it

    def rows(self) -> dict[str, str | None]:
        """Subscription -> its row's ordering key, each subscription once."""
        keys = self.ordering_keys
        if keys is None:
            return dict.fromkeys(self.subscriptions)
        rows: dict[str, str | None] = {}
        for name, key in zip(self.subscriptions, keys, strict=True):
            rows.setdefault(name, key)
        return rows


def rows_made(batch: Sequence[NewEvent], duplicates: Sequence[bool]) -> int:
    """Delivery rows an append made: those of each event that was not a duplicate."""
    return sum(len(item.rows()) for item, dup in zip(batch, duplicates, strict=True) if not dup)


@dataclass(frozen=True, slots=True)
class DeadLetterInfo:
    """Why an event was dead-lettered; carried by DEAD_LETTER rows (CONTRACT 4)."""

    reason: str  # exhausted | rejected | gone | expired
    status: int | None
    attempts: int
    sink: str


@dataclass(frozen=True, slots=True)
class PausedOn:
    """The sink a subscription was paused on: redacted for display, plus a fingerprint of the
    URL as configured, so that a changed sink ends the pause without the URL being kept."""

    sink: str
    fingerprint: str | None = None  # None: a row from before fingerprints; `sink` is verbatim
    reason: str = PAUSED_GONE

    @classmethod
    def of(cls, url: str) -> PausedOn:
        """Costs tens of milliseconds (a slow hash): call it off the event loop."""
        return cls(redact.url(url), redact.fingerprint(url))

    def same(self, url: str) -> bool:
        """True when `url` is the sink this pause was made on (also slow)."""
        if self.fingerprint is None:
            return self.sink == url
        return redact.matches(url, self.fingerprint)


@dataclass(frozen=True, slots=True)
class Opened:
    """An open circuit breaker as the store keeps it, shared by replicas (CONTRACT 5)."""

    until: float  # when a probe may go
    cooldown: float  # the cooldown that set `until` (doubled at the next failed probe)
    error: str  # the failure that opened it last, for operators


@dataclass(frozen=True, slots=True)
class Handshake:
    """The latest validation handshake with a subscription's sink (CE webhook 4, CONTRACT 5
    `handshake: true`), shared by replicas. `fingerprint` is `redact.fingerprint` of the sink URL
    it was made with: a changed sink needs a new one."""

    fingerprint: str
    origin: str  # the WebHook-Request-Origin it was made with
    allowed_rate: float | None  # consented requests per second; None: unlimited
    error: str | None  # why it was refused; None: consented
    at: float


@dataclass(frozen=True, slots=True)
class Leased:
    """A delivery handed out by `lease`; `attempt` is 1-based and already counted."""

    id: int
    subscription: str
    kind: Kind
    attempt: int
    lease: int
    event: Event
    received_at: float
    dead_letter: DeadLetterInfo | None = None
    batch: int | None = None  # batch delivery: the group the row is sent with (`lease_batch`)
    ordering_key: str | None = None  # per-key ordering (CONTRACT 5); None: unordered


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt, for the attempts log."""

    status: int | None  # None: no response (timeout, connection error)
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    delivery: Leased
    attempt: Attempt


@dataclass(frozen=True, slots=True)
class Retry:
    delivery: Leased
    attempt: Attempt | None  # None: given back untried (shutdown); the attempt is not counted
    due_at: float


@dataclass(frozen=True, slots=True)
class Dead:
    """Dead-letter the row. With `notify_sink`, a DEAD_LETTER row is queued in the same commit."""

    delivery: Leased
    attempt: Attempt | None
    info: DeadLetterInfo
    notify_sink: bool = False


Outcome = Ack | Retry | Dead

# How many of the leading events (in lease order) one batch takes; at least 1.
Fits = Callable[[Sequence[Event]], int]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-lettered delivery as listed for operators."""

    id: int
    subscription: str
    event: Event
    reason: str | None
    status: int | None
    attempts: int
    updated_at: float
    producer: str | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    """How the dispatcher takes the delivery rows this process appends, leased by the append's
    own transaction: the hot path makes no lease query and decodes no stored event.

    `take(subscription, now)` is asked inside the transaction for each unordered SINK row: the
    lease's expiry if the dispatcher starts the row at once (it has reserved a slot for it), or
    None (the row waits to be leased as usual). Once the transaction committed, `taken` gets the
    rows; when it rolled back, `dropped` gets the subscription of each reservation it ends."""

    take: Callable[[str, float], float | None]
    taken: Callable[[Sequence[Leased]], None]
    dropped: Callable[[Sequence[str]], None]


class Store(Protocol):
    # Delivery rows this process's `append` calls made so far (duplicates make none): how the
    # dispatcher sees how fast arrivals add to the backlog (`gateway.delivery.pressure`).
    appended: int

    @property
    def identity(self) -> str:
        """A random identity of this database, made when it was created (valid after `open`).
        Delivery row ids repeat across databases; webhook-ids combine the two."""

    async def open(self) -> None:
        """Apply schema migrations and give back the leases this process's previous run left:
        all of them on a store owned by one process (SQLite); on a shared store (PostgreSQL),
        those recorded under this replica's identity (other replicas' leases expire)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""

    async def ready(self) -> None:
        """Raise `StoreUnavailable` unless writes would go through now, answering within a
        short deadline: recent writes failed, a commit is stuck, or the write path is blocked
        (readiness, `/readyz`)."""

    def on_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback` when deliveries may have become due: after an `append` of this store
        committed new delivery rows, and (shared stores) when another process committed some.
        This is how ingest and delivery meet: ingest commits, the store tells who listens."""

    def hand_off(self, handoff: Handoff | None) -> None:
        """Offer appended rows to `handoff` (None: stop offering). A store that cannot lease
        rows in the append's transaction ignores it: every row is then leased as usual."""

    def on_commit(self, observe: Callable[[float], None]) -> None:
        """Call `observe` with the seconds each transaction of the group commit took, BEGIN to
        COMMIT (the operator's store commit latency; stores without one never call it)."""

    async def append(
        self, batch: Sequence[NewEvent], now: float, dedupe_window: float
    ) -> list[bool]:
        """Store every event and its delivery rows in one commit; all or nothing.

        Returns, per event, True when `(source, id)` was seen within `dedupe_window` (the event is
        then neither stored again nor delivered again). Concurrent calls share a transaction.
        """

    async def lease(
        self, subscription: str, kind: Kind, limit: int, now: float, lease_for: float
    ) -> list[Leased]:
        """Hand out up to `limit` due PENDING rows of one subscription, oldest due first."""

    async def lease_batch(
        self,
        subscription: str,
        limit: int,
        now: float,
        lease_for: float,
        linger: float,
        fits: Fits,
    ) -> list[Leased]:
        """Batch delivery (CONTRACT 5): lease one batch of SINK rows, ordered by row id.

        A due group (rows already grouped: `batch` set) is leased whole, every PENDING row of
        it, whatever `limit`. Otherwise up to `limit` due ungrouped rows, oldest due first, but
        none while fewer than `limit` are due and the oldest has been due less than `linger`;
        the first `fits(events)` of them (at least one) become a group whose `batch` is the
        smallest of their ids, kept on every later lease until the group ends."""

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> None:
        """Apply outcomes (fenced by lease token) and log their attempts; one commit."""

    async def next_due(self, subscriptions: Sequence[str]) -> float | None:
        """The earliest `due_at` of a PENDING row of these subscriptions, or None."""

    async def pending(self) -> int:
        """How many delivery rows are PENDING (the backlog)."""

    async def pause(self, subscription: str, sink: PausedOn, reason: str, now: float) -> None: ...

    async def resume(self, subscription: str) -> None: ...

    async def paused(self) -> Mapping[str, PausedOn]:
        """Paused subscriptions and the sink each was paused on."""

    async def dead_letters(self, subscription: str | None, limit: int) -> list[DeadLetter]: ...

    # -- circuit breakers (CONTRACT 5) ----------------------------------------------------------

    async def breakers(self) -> Mapping[str, Opened]:
        """Subscriptions whose circuit breaker is open (absent: closed)."""

    async def open_breaker(self, subscription: str, opened: Opened, now: float) -> None:
        """Record the breaker open (or open again, with its new cooldown)."""

    async def claim_probe(self, subscription: str, opened: Opened, now: float) -> bool:
        """Take the one probe of an open breaker: True (and the breaker's row becomes `opened`,
        whose `until` covers the probe) unless another holder took it, i.e. unless the stored
        row's `until` is still ahead of `now`."""

    async def close_breaker(self, subscription: str) -> None: ...

    # -- rate limits (CONTRACT 5) ------------------------------------------------------------

    async def take_tokens(
        self, subscription: str, rate: float, capacity: float, want: int, now: float
    ) -> int:
        """Take up to `want` tokens from the subscription's token bucket (`rate` a second, at
        most `capacity`, full at first); shared by every process using the store."""

    # -- validation handshakes (CONTRACT 5, `handshake: true`) ----------------------------------

    async def handshakes(self) -> Mapping[str, Handshake]:
        """The latest handshake of each subscription that made one."""

    async def save_handshake(self, subscription: str, handshake: Handshake) -> None:
        """Record a subscription's latest handshake, replacing the one before."""

    async def redeliver(self, delivery_id: int, now: float) -> bool:
        """Make a dead-lettered SINK row PENDING again, due now; False when there is none."""

    async def purge(self, now: float, retention: float, dedupe_window: float) -> int:
        """Delete events whose deliveries all ended over `retention` ago; expire dedupe keys."""

    # -- operators (CONTRACT 6; the types live in `gateway.store.ops`) --------------------------

    @property
    def replica(self) -> str:
        """This process's replica identity (leases, `report_replica`)."""

    async def report_replica(self, state: ReplicaState) -> None:
        """Record what this replica runs (upsert by `state.replica`)."""

    async def replicas(self, since: float) -> list[ReplicaState]:
        """The replicas that reported at or after `since`, by name."""

    async def counts(self) -> Mapping[str, Counts]:
        """Per subscription with rows: backlog, oldest pending, delivered, failed attempts, dead
        letters, the latest failed attempt's error. On a shared store: the whole deployment's."""

    async def dead_letters_where(self, query: DeadLetterQuery) -> list[DeadLetter]:
        """Dead SINK rows matching `query`, in delivery id order (a page after `query.after`)."""

    async def events_between(
        self, since: float, until: float, after: int, limit: int
    ) -> list[StoredEvent]:
        """Stored events received within [since, until) with seq > `after`, in seq order."""

    async def requeue(self, subscription: str, seqs: Sequence[int], now: float) -> int:
        """New PENDING SINK rows (new webhook-ids) of these events for `subscription`, due now;
        returns how many were added (events purged meanwhile are skipped)."""

    async def history(self, source: str, id: str) -> EventHistory | None:
        """The latest stored event with this (source, id), its deliveries and their attempts."""

    async def recent_attempts(self, subscription: str, limit: int) -> list[RecentAttempt]:
        """The latest `limit` attempts to `subscription`'s sink, newest first."""

    async def expire_removed(self, active: Sequence[str], now: float, retention: float) -> int:
        """Dead-letter (reason `removed`) the PENDING SINK rows of subscriptions not in `active`
        created over `retention` ago and not held by a live lease; return how many."""
