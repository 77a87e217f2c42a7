"""One row's delivery attempt: expiry (CE expirytime), the request, what its result means
(`retry.decide`), and the log line and metrics of it. The dispatcher records the outcome."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from gateway.config.model import Subscription
from gateway.delivery import retry
from gateway.delivery.render import dead_letter_info
from gateway.delivery.sender import Sender
from gateway.ops.metrics import Metrics
from gateway.store.base import Ack, Attempt, Dead, Kind, Leased, Outcome, Retry

log = logging.getLogger("gateway.delivery")

Gone = Callable[[Subscription, float], Awaitable[None]]


def expired(leased: Leased, now: float) -> bool:
    """CE expirytime extension: intermediaries MAY discard events whose expirytime has passed."""
    value = leased.event.attributes.get("expirytime")
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() <= now
    except ValueError:
        return False


class Attempts:
    def __init__(
        self, sender: Sender, metrics: Metrics, clock: Callable[[], float], gone: Gone
    ) -> None:
        self._sender = sender
        self._metrics = metrics
        self._clock = clock
        self._gone = gone  # CE webhook 2.2: a 410 pauses the subscription

    async def deliver(self, sub: Subscription, row: Leased) -> Outcome:
        now = self._clock()
        notify = sub.delivery.dead_letter is not None and row.kind is Kind.SINK
        if row.kind is Kind.SINK and expired(row, now):
            self._log(sub, row, None, "dead", "expired")
            return Dead(row, None, dead_letter_info(sub, row, "expired", None), notify_sink=notify)
        if row.kind is Kind.DEAD_LETTER and sub.delivery.dead_letter is None:
            return Dead(row, None, dead_letter_info(sub, row, "exhausted", None))
        result, latency = await self._sender.send(sub, row, now)
        attempt = Attempt(result.status, latency, result.error)
        decision = retry.decide(sub.delivery.retry, row.attempt, result)
        done = self._clock()
        self._metrics.observe(
            "gateway_attempt_duration_seconds", latency / 1000, subscription=sub.name
        )
        if isinstance(decision, retry.Succeed):
            if row.kind is Kind.SINK:
                self._metrics.observe(
                    "gateway_delivery_latency_seconds", done - row.received_at,
                    subscription=sub.name,
                )  # fmt: skip
            self._log(sub, row, attempt, "delivered")
            return Ack(row, attempt)
        if isinstance(decision, retry.RetryAt):
            self._log(sub, row, attempt, "retry", f"in {decision.delay:.1f}s")
            return Retry(row, attempt, done + decision.delay)
        self._log(sub, row, attempt, "dead", decision.reason)
        info = dead_letter_info(sub, row, decision.reason, attempt)
        if row.kind is Kind.DEAD_LETTER:
            return Dead(row, attempt, info)
        if decision.reason == "gone":
            await self._gone(sub, done)
        self._metrics.inc("gateway_dead_letters_total", subscription=sub.name,
                          reason=decision.reason)
        return Dead(row, attempt, info, notify_sink=notify)

    def _log(
        self, sub: Subscription, row: Leased, attempt: Attempt | None, result: str, why: str = ""
    ) -> None:
        self._metrics.inc("gateway_delivery_attempts_total", subscription=sub.name, result=result)
        # Successes are counted in the metric above and logged only at DEBUG: a line per
        # delivered attempt cost ~6% of the process under load. Failures stay at INFO.
        level = logging.DEBUG if result == "delivered" else logging.INFO
        if not log.isEnabledFor(level):
            return
        log.log(
            level, "delivery %s%s", result, f" ({why})" if why else "",
            extra={
                "event_id": row.event.id,
                "subscription": sub.name,
                "kind": row.kind.name.lower(),
                "attempt": row.attempt,
                "status": attempt.status if attempt else None,
                "latency_ms": round(attempt.latency_ms, 1) if attempt else None,
                "error": attempt.error if attempt else None,
            },
        )
