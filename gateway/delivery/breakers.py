"""The dispatcher's circuit breakers (CONTRACT 5): one `Breaker` per subscription that has one,
their state shared through the store, their transitions logged and counted.

The dispatcher asks `holds` before leasing a subscription's SINK rows, `probe_due` to lease just
one, `claim` whether a leased probe is its own (replicas race for it through the store), and
passes every outcome through `after`. A failed attempt made while the breaker is open (the one
that opened it, or a failed probe) is given back uncounted: a breaker never walks an event
toward its dead letter. DEAD_LETTER rows go to another sink and
are not held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from gateway.config.model import Subscription
from gateway.delivery.breaker import Breaker, Gate, State, failed
from gateway.errors import StoreUnavailable
from gateway.ops.metrics import Metrics
from gateway.store.base import Attempt, Kind, Leased, Opened, Outcome, Retry, Store

log = logging.getLogger("gateway.delivery")

# While an attempt may open the breaker or is a probe, its retry policy cannot exhaust it: the
# breaker decides what the failure means.
UNBOUNDED_ATTEMPTS = 2**31 - 1


class Breakers:
    def __init__(self, store: Store, metrics: Metrics, clock: Callable[[], float]) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._by_name: dict[str, Breaker] = {}
        self._probes: dict[str, int] = {}  # the row each half-open breaker probes with

    def reconfigure(self, subscriptions: Iterable[Subscription]) -> None:
        """Keep the state of subscriptions whose breaker stays on; new policies apply from the
        next transition."""
        found: dict[str, Breaker] = {}
        for sub in subscriptions:
            policy = sub.delivery.circuit_breaker
            if policy is None:
                continue
            breaker = self._by_name.get(sub.name) or Breaker(policy)
            breaker.policy = policy
            found[sub.name] = breaker
        self._by_name = found

    async def refresh(self) -> None:
        """Take what other replicas (or this process's previous run) stored."""
        if not self._by_name:
            return
        stored = await self._store.breakers()
        for name, breaker in self._by_name.items():
            breaker.adopt(stored.get(name))

    def is_open(self, name: str) -> bool:
        breaker = self._by_name.get(name)
        return breaker is not None and breaker.is_open

    def holds(self, name: str, now: float) -> bool:
        """No SINK attempt of `name` may start now."""
        breaker = self._by_name.get(name)
        return breaker is not None and breaker.gate(now) is Gate.NONE

    def probe_due(self, name: str, now: float) -> bool:
        breaker = self._by_name.get(name)
        return breaker is not None and breaker.gate(now) is Gate.PROBE

    def next_probe(self, names: Sequence[str], now: float) -> float | None:
        """The earliest time one of these subscriptions' open breakers lets a probe go."""
        times = [
            b.opened.until
            for name in names
            if (b := self._by_name.get(name)) is not None
            and b.gate(now) is Gate.NONE
            and b.opened is not None
            and b.opened.until > now
        ]
        return min(times) if times else None

    async def claim(
        self, sub: Subscription, rows: list[Leased], now: float, lease_ends: float
    ) -> list[Leased]:
        """Of rows leased as a probe, keep one if this replica wins the probe; the rest (or all,
        when another replica won it) are given back untried."""
        breaker = self._by_name.get(sub.name)
        if breaker is None or breaker.opened is None or not rows:
            return rows
        won = await self._store.claim_probe(
            sub.name, replace(breaker.opened, until=lease_ends), now
        )
        keep = rows[:1] if won else []
        back = rows[len(keep) :]
        if back:
            await self._store.finish([Retry(row, None, now) for row in back], now)
        if won:
            breaker.probing()
            self._probes[sub.name] = keep[0].id
            log.info("circuit breaker probing", extra={"subscription": sub.name})
        else:
            await self.refresh()
        return keep

    def shield(self, sub: Subscription) -> Subscription:
        """`sub` as the attempt should see it: while a failure would open the breaker or the
        attempt is the probe, the retry policy never exhausts (the breaker decides)."""
        breaker = self._by_name.get(sub.name)
        if breaker is None or not (
            breaker.is_open or breaker.failures + 1 >= breaker.policy.failures
        ):
            return sub
        policy = replace(sub.delivery.retry, max_attempts=UNBOUNDED_ATTEMPTS)
        return replace(sub, delivery=replace(sub.delivery, retry=policy))

    async def after(self, sub: Subscription, row: Leased, outcome: Outcome) -> Outcome:
        """Feed one attempt's outcome to the breaker; return the outcome to record."""
        breaker = self._by_name.get(sub.name)
        attempt = outcome.attempt
        if breaker is None or row.kind is not Kind.SINK:
            return outcome
        if attempt is None:  # not sent (expired): a probe that was not one goes again
            if breaker.state is State.HALF_OPEN and self._probes.get(sub.name) == row.id:
                now = self._clock()
                breaker.unprobed(now)
                if breaker.opened is not None:
                    await self._store.open_breaker(sub.name, breaker.opened, now)
            return outcome
        failure = failed(attempt.status)
        now = self._clock()
        change = breaker.record(failure, _why(attempt), now)
        if change is not None:
            await self._store_change(sub.name, change.opened, now)
        opened = breaker.opened if failure and breaker.is_open else None
        if opened is not None and isinstance(outcome, Retry):
            # Not counted toward max_attempts, and due as when it arrived: held until a probe
            # succeeds, then leased in arrival order with the rows that waited behind it.
            return Retry(row, None, row.received_at)
        return outcome

    async def _store_change(self, name: str, opened: Opened | None, now: float) -> None:
        try:
            if opened is None:
                await self._store.close_breaker(name)
            else:
                await self._store.open_breaker(name, opened, now)
        except StoreUnavailable as exc:  # held here still; other replicas learn at the next one
            log.warning("breaker state not stored (%s)", exc.detail, extra={"subscription": name})
        state = "closed" if opened is None else "open"
        self._metrics.inc("gateway_breaker_transitions_total", subscription=name, state=state)
        if opened is None:
            log.warning("circuit breaker closed: the sink answered", extra={"subscription": name})
        else:
            log.warning(
                "circuit breaker open for %gs: %s", opened.cooldown, opened.error,
                extra={"subscription": name},
            )  # fmt: skip


def _why(attempt: Attempt) -> str:
    if attempt.error:
        return attempt.error
    return f"HTTP {attempt.status}" if attempt.status is not None else "no response"


