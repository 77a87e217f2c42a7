"""The retry policy: what one delivery attempt's result means (pure; no I/O, no clock).

`decide` turns a policy, the 1-based attempt number and the attempt's `Result` into a `Decision`:
succeed, retry after a delay, or give up with a reason the dead letter carries.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from gateway.config.model import Backoff, RetryPolicy

# Statuses that are failed attempts worth retrying besides 3xx and 5xx (CONTRACT 4): request
# timeout, not found (yet), conflict, too many requests.
_RETRYABLE_4XX = frozenset({404, 408, 409, 429})
# Exponents beyond this already overflow any sensible max_delay; keeps the power finite.
_MAX_EXPONENT = 1000
# RFC 9110 10.2.3: delay-seconds = 1*DIGIT
_DELAY_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt produced."""

    status: int | None  # HTTP status; None when there was no response
    error: str | None = None  # "timeout", "connection reset by peer", ...
    retry_after: float | None = None  # seconds, parsed from Retry-After


@dataclass(frozen=True, slots=True)
class Succeed:
    pass


@dataclass(frozen=True, slots=True)
class RetryAt:
    delay: float  # seconds from now


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str  # "exhausted" | "rejected" | "gone"


Decision = Succeed | RetryAt | GiveUp


def retryable(status: int | None) -> bool:
    """True when a failed attempt with this status (None: no response) may be tried again."""
    if status is None:
        return True
    if 400 <= status < 500:
        return status in _RETRYABLE_4XX
    # 3xx: redirects are failures and never followed (CE webhook 2.2); 5xx: server errors.
    return True


def decide(
    policy: RetryPolicy,
    attempt: int,
    result: Result,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Decide what follows attempt number `attempt` (1-based) that produced `result`."""
    status = result.status
    if status is not None and 200 <= status < 300:
        return Succeed()
    # CE webhook 2.2: 410 means the target is retired; the sender should stop sending.
    if status == 410:
        return GiveUp("gone")
    if not retryable(status):
        return GiveUp("rejected")
    if attempt >= policy.max_attempts:
        return GiveUp("exhausted")
    if result.retry_after is not None:
        # CE webhook 2.2: the sender MUST honour Retry-After; capped so a sink cannot park us.
        return RetryAt(min(max(result.retry_after, 0.0), policy.max_delay))
    delay = delay_for(policy, attempt)
    if policy.jitter > 0:
        delay *= 1.0 - policy.jitter + 2.0 * policy.jitter * rand()
    return RetryAt(min(max(delay, 0.0), policy.max_delay))


def delay_for(policy: RetryPolicy, retry_number: int) -> float:
    """The delay before retry `retry_number` (1-based), before jitter, capped at max_delay."""
    if retry_number < 1:
        raise ValueError(f"retry numbers start at 1, got {retry_number}")
    if policy.schedule:
        # Past the end of an explicit schedule its last delay repeats.
        delay = policy.schedule[min(retry_number, len(policy.schedule)) - 1]
    elif policy.backoff is Backoff.EXPONENTIAL:
        delay = policy.initial_delay * 2.0 ** min(retry_number - 1, _MAX_EXPONENT)
    elif policy.backoff is Backoff.LINEAR:
        delay = policy.initial_delay * retry_number
    else:
        delay = policy.initial_delay
    return min(delay, policy.max_delay)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (RFC 9110 10.2.3); None when absent or garbage.

    Accepts delay-seconds or an HTTP-date; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 5.6.7: HTTP-dates are always in GMT.
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)
