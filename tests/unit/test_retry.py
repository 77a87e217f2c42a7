"""The retry policy as a table: status x attempt x policy -> decision, delays, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from gateway.config.model import Backoff, RetryPolicy
from gateway.delivery.retry import (
    Decision,
    GiveUp,
    Result,
    RetryAt,
    Succeed,
    decide,
    delay_for,
    parse_retry_after,
)

# No jitter unless a case asks for it, so delays are exact.
EXP = RetryPolicy(max_attempts=5, initial_delay=1.0, max_delay=60.0, jitter=0.0)


def mid() -> float:
    return 0.5  # the middle of [0, 1): a jitter factor of exactly 1


@pytest.mark.parametrize(
    ("status", "attempt", "expected"),
    [
        (200, 1, Succeed()),
        (201, 5, Succeed()),
        (202, 1, Succeed()),
        (204, 9, Succeed()),
        (299, 1, Succeed()),
        # 410: gone at once, whatever the attempt
        (410, 1, GiveUp("gone")),
        (410, 5, GiveUp("gone")),
        # other 4xx: rejected at once
        (400, 1, GiveUp("rejected")),
        (401, 1, GiveUp("rejected")),
        (403, 2, GiveUp("rejected")),
        (413, 1, GiveUp("rejected")),
        (415, 1, GiveUp("rejected")),
        (422, 1, GiveUp("rejected")),
        (499, 1, GiveUp("rejected")),
        # retryable: delay before retry n is 2**(n-1) with initial 1s
        (404, 1, RetryAt(1.0)),
        (408, 2, RetryAt(2.0)),
        (409, 3, RetryAt(4.0)),
        (429, 4, RetryAt(8.0)),
        (500, 1, RetryAt(1.0)),
        (502, 1, RetryAt(1.0)),
        (503, 2, RetryAt(2.0)),
        (504, 1, RetryAt(1.0)),
        (599, 1, RetryAt(1.0)),
        # redirects are failed attempts, never followed
        (301, 1, RetryAt(1.0)),
        (302, 1, RetryAt(1.0)),
        (307, 2, RetryAt(2.0)),
        (308, 1, RetryAt(1.0)),
        # no response at all
        (None, 1, RetryAt(1.0)),
        (None, 4, RetryAt(8.0)),
        # the last attempt: retryable failures are exhausted
        (500, 5, GiveUp("exhausted")),
        (429, 5, GiveUp("exhausted")),
        (302, 5, GiveUp("exhausted")),
        (None, 5, GiveUp("exhausted")),
        (None, 6, GiveUp("exhausted")),
        # the last attempt does not turn a rejection into exhaustion
        (400, 5, GiveUp("rejected")),
        (410, 6, GiveUp("gone")),
    ],
)
def test_decide_by_status_and_attempt(status: int | None, attempt: int, expected: Decision) -> None:
    assert decide(EXP, attempt, Result(status), rand=mid) == expected


def test_single_attempt_policy_never_retries() -> None:
    policy = RetryPolicy(max_attempts=1, jitter=0.0)
    assert decide(policy, 1, Result(503)) == GiveUp("exhausted")
    assert decide(policy, 1, Result(200)) == Succeed()


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (
            RetryPolicy(backoff=Backoff.EXPONENTIAL, initial_delay=1, max_delay=3600),
            [1, 2, 4, 8, 16, 32],
        ),
        (
            RetryPolicy(backoff=Backoff.EXPONENTIAL, initial_delay=0.5, max_delay=5),
            [0.5, 1, 2, 4, 5, 5],
        ),
        (
            RetryPolicy(backoff=Backoff.LINEAR, initial_delay=3, max_delay=3600),
            [3, 6, 9, 12, 15, 18],
        ),
        (RetryPolicy(backoff=Backoff.LINEAR, initial_delay=3, max_delay=10), [3, 6, 9, 10, 10, 10]),
        (RetryPolicy(backoff=Backoff.FIXED, initial_delay=7, max_delay=3600), [7, 7, 7, 7, 7, 7]),
        (RetryPolicy(backoff=Backoff.FIXED, initial_delay=7, max_delay=2), [2, 2, 2, 2, 2, 2]),
        # an explicit schedule wins over backoff; past its end the last delay repeats
        (
            RetryPolicy(backoff=Backoff.LINEAR, schedule=(5, 300, 1800), max_delay=3600),
            [5, 300, 1800, 1800, 1800, 1800],
        ),
        # ... and is still capped
        (RetryPolicy(schedule=(5, 300, 7200), max_delay=3600), [5, 300, 3600, 3600, 3600, 3600]),
    ],
)
def test_delay_for_each_backoff(policy: RetryPolicy, delays: list[float]) -> None:
    assert [delay_for(policy, n) for n in range(1, 7)] == delays


def test_delay_for_huge_retry_numbers_stays_capped() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=3600)
    assert delay_for(policy, 100_000) == 3600


def test_delay_for_rejects_retry_zero() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        delay_for(EXP, 0)


@pytest.mark.parametrize(
    ("rand", "expected"),
    [
        (0.0, 8.0),  # factor 1 - jitter
        (0.5, 10.0),  # factor 1
        (0.75, 11.0),  # factor 1.1
    ],
)
def test_jitter_scales_the_delay_within_its_band(rand: float, expected: float) -> None:
    policy = RetryPolicy(backoff=Backoff.FIXED, initial_delay=10, max_delay=100, jitter=0.2)
    decision = decide(policy, 1, Result(500), rand=lambda: rand)
    assert isinstance(decision, RetryAt)
    assert decision.delay == pytest.approx(expected)


def test_jitter_never_exceeds_max_delay() -> None:
    policy = RetryPolicy(backoff=Backoff.FIXED, initial_delay=10, max_delay=10, jitter=0.5)
    assert decide(policy, 1, Result(500), rand=lambda: 0.999) == RetryAt(10.0)


def test_jitter_applies_to_schedules_too() -> None:
    policy = RetryPolicy(schedule=(100,), max_delay=1000, jitter=0.1)
    decision = decide(policy, 3, Result(None, "timeout"), rand=lambda: 0.0)
    assert isinstance(decision, RetryAt)
    assert decision.delay == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (30.0, 30.0),  # replaces the computed 1s, no jitter
        (0.0, 0.0),
        (-5.0, 0.0),  # never negative
        (10_000.0, 60.0),  # capped at max_delay
    ],
)
def test_retry_after_replaces_the_computed_delay(retry_after: float, expected: float) -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=1, max_delay=60, jitter=0.5)
    decision = decide(policy, 1, Result(429, retry_after=retry_after), rand=lambda: 0.0)
    assert decision == RetryAt(expected)


def test_retry_after_does_not_extend_exhausted_or_rejected() -> None:
    assert decide(EXP, 5, Result(503, retry_after=1.0)) == GiveUp("exhausted")
    assert decide(EXP, 1, Result(400, retry_after=1.0)) == GiveUp("rejected")
    assert decide(EXP, 1, Result(200, retry_after=1.0)) == Succeed()


NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Fri, 01 Mar 2024 12:00:30 GMT", 30.0),  # IMF-fixdate
        ("Friday, 01-Mar-24 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Fri Mar  1 12:00:05 2024", 5.0),  # obsolete asctime form
        ("Fri, 01 Mar 2024 11:00:00 GMT", 0.0),  # in the past
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("Fri, 99 Mar 2024 12:00:30 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_round_trips_a_formatted_date() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), when.timestamp() - 42) == 42.0
