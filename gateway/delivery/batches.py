"""Batch delivery (CONTRACT 5, `delivery.mode: batch`): one attempt carries a batch of events.

The dispatcher hands a batch subscription's SINK leasing to `Batches.fill`: per free slot, one
rate-limit token, one `Store.lease_batch` (a due group comes back whole, else up to
`max_events` fresh rows once `linger` has passed or the batch is full, bounded by `max_bytes`
and one `specversion`, CE HTTP binding 3.3), one task. `deliver` renders the events in
structured mode as a JSON array (CE JSON format 4), POSTs it once, signed once, under the
batch's stable webhook-id, and turns the one result into one outcome per row: a 2xx acks all,
a retryable failure retries all at one due time, otherwise each row is dead-lettered on its
own (its dead letter is one structured event). The breaker sees one outcome per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gateway.config.model import Mode, Subscription
from gateway.delivery import render, retry
from gateway.delivery.attempts import Gone, expired
from gateway.delivery.breakers import Breakers
from gateway.delivery.ratelimit import Rates
from gateway.delivery.render import dead_letter_info
from gateway.delivery.sender import Sender
from gateway.event import Event
from gateway.ops.metrics import Metrics
from gateway.store.base import Ack, Attempt, Dead, Kind, Leased, Outcome, Retry, Store

log = logging.getLogger("gateway.delivery")

Spawn = Callable[[Subscription, list[Leased], float], None]


def handles(sub: Subscription, kind: Kind) -> bool:
    """Batch mode applies to the sink; dead letters go one structured event each."""
    return kind is Kind.SINK and sub.delivery.mode is Mode.BATCH


def fitting(max_bytes: int) -> Callable[[Sequence[Event]], int]:
    """How many leading events make one batch body of at most `max_bytes` (the first always
    goes), all of the first one's specversion (CE HTTP binding 3.3)."""

    def fits(events: Sequence[Event]) -> int:
        size = 1  # "[" ... "]", one "," per further event
        for count, event in enumerate(events):
            if count and event.attributes.get("specversion") != events[0].attributes.get(
                "specversion"
            ):
                return count
            size += len(render.structured(event).body) + 1
            if count and size > max_bytes:
                return count
        return len(events)

    return fits


class Batches:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        breakers: Breakers,
        rates: Rates,
        metrics: Metrics,
        clock: Callable[[], float],
        gone: Gone,
    ) -> None:
        self._store = store
        self._sender = sender
        self._breakers = breakers
        self._rates = rates
        self._metrics = metrics
        self._clock = clock
        self._gone = gone  # CE webhook 2.2: a 410 pauses the subscription
        self._lingering: dict[str, float] = {}  # held short batches: when they may go

    # -- leasing --------------------------------------------------------------------------

    async def fill(
        self, sub: Subscription, room: int, probe: bool, now: float, lease_for: float,
        spawn: Spawn,
    ) -> list[int]:  # fmt: skip
        """Lease and start up to `room` batches; return each started batch's row count."""
        policy = sub.delivery.batch
        started: list[int] = []
        self._lingering.pop(sub.name, None)
        while len(started) < room:
            if await self._rates.allow(sub.name, 1, now) < 1:  # one token per batch
                break
            rows = await self._store.lease_batch(
                sub.name, policy.max_events, now, lease_for, policy.linger,
                fitting(policy.max_bytes),
            )  # fmt: skip
            if rows and probe:  # breaker: the probe is one batch; replicas race for it
                rows = await self._probe(sub, rows, now, lease_for)
            if not rows:
                self._rates.unused(sub.name, 1)
                await self._linger(sub, now)
                break
            spawn(sub, rows, now + lease_for)
            started.append(len(rows))
            if probe:
                break
        return started

    async def _probe(
        self, sub: Subscription, rows: list[Leased], now: float, lease_for: float
    ) -> list[Leased]:
        """The whole batch when this replica wins the probe; none (given back) otherwise."""
        if await self._breakers.claim(sub, rows[:1], now, now + lease_for):
            return rows
        await self._store.finish([Retry(row, None, now) for row in rows[1:]], now)
        return []

    async def _linger(self, sub: Subscription, now: float) -> None:
        """Due rows that were not leased wait for their linger: look again when it ends."""
        due = await self._store.next_due([sub.name])
        if due is not None and due <= now:
            self._lingering[sub.name] = due + sub.delivery.batch.linger

    def lingering(self, name: str, now: float) -> bool:
        until = self._lingering.get(name)
        return until is not None and until > now

    def next_wake(self, now: float) -> float | None:
        """When a held short batch may go."""
        times = [until for until in self._lingering.values() if until > now]
        return min(times) if times else None

    # -- one attempt ----------------------------------------------------------------------

    async def deliver(
        self, sub: Subscription, shielded: Subscription, rows: Sequence[Leased]
    ) -> list[Outcome]:
        """One attempt of a batch; `shielded` is `sub` as the breaker lets the attempt see it."""
        now = self._clock()
        notify = sub.delivery.dead_letter is not None
        outcomes: list[Outcome] = []
        sent: list[Leased] = []
        for row in rows:  # CONTRACT 5, expiry: never attempted
            if expired(row, now):
                info = dead_letter_info(sub, row, "expired", None)
                outcomes.append(Dead(row, None, info, notify_sink=notify))
                self._metrics.inc("gateway_dead_letters_total", subscription=sub.name,
                                  reason="expired")  # fmt: skip
            else:
                sent.append(row)
        if not sent:
            return outcomes
        request = render.batch(row.event for row in sent)
        result, latency = await self._sender.send_batch(sub, sent, request, now)
        attempt = Attempt(result.status, latency, result.error)
        number = max(row.attempt for row in sent)
        decision = retry.decide(shielded.delivery.retry, number, result)
        done = self._clock()
        self._metrics.observe(
            "gateway_attempt_duration_seconds", latency / 1000, subscription=sub.name
        )
        mine: list[Outcome]
        if isinstance(decision, retry.Succeed):
            mine = [Ack(row, attempt) for row in sent]
            for row in sent:
                self._metrics.observe("gateway_delivery_latency_seconds",
                                      done - row.received_at, subscription=sub.name)  # fmt: skip
            self._log(sub, sent, attempt, "delivered")
        elif isinstance(decision, retry.RetryAt):
            mine = [Retry(row, attempt, done + decision.delay) for row in sent]
            self._log(sub, sent, attempt, "retry", f"in {decision.delay:.1f}s")
        else:
            if decision.reason == "gone":
                await self._gone(sub, done)
            mine = [
                Dead(row, attempt, dead_letter_info(sub, row, decision.reason, attempt),
                     notify_sink=notify)
                for row in sent
            ]  # fmt: skip
            self._metrics.inc("gateway_dead_letters_total", len(sent), subscription=sub.name,
                              reason=decision.reason)  # fmt: skip
            self._log(sub, sent, attempt, "dead", decision.reason)
        # The breaker sees one outcome per batch; what it makes of it applies to every row.
        first = await self._breakers.after(sub, sent[0], mine[0])
        if first is not mine[0] and isinstance(first, Retry) and first.attempt is None:
            mine = [Retry(row, None, first.due_at) for row in sent]
        return outcomes + mine

    def _log(
        self, sub: Subscription, rows: Sequence[Leased], attempt: Attempt, result: str,
        why: str = "",
    ) -> None:  # fmt: skip
        # One attempt per event, as the attempts log keeps them; one log line per batch.
        self._metrics.inc("gateway_delivery_attempts_total", len(rows), subscription=sub.name,
                          result=result)  # fmt: skip
        level = logging.DEBUG if result == "delivered" else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level, "batch of %d %s%s", len(rows), result, f" ({why})" if why else "",
                extra={
                    "batch": self._sender.batch_id(rows[0]),
                    "subscription": sub.name,
                    "attempt": max(row.attempt for row in rows),
                    "status": attempt.status,
                    "latency_ms": round(attempt.latency_ms, 1),
                    "error": attempt.error,
                },
            )  # fmt: skip

