"""The circuit breaker's state machine (CONTRACT 5), table-tested with an explicit clock."""

from __future__ import annotations

import pytest

from gateway.config.model import CircuitBreaker
from gateway.delivery.breaker import Breaker, Gate, State, failed
from gateway.store.base import Opened

POLICY = CircuitBreaker(failures=3, cooldown=10.0, max_cooldown=35.0)


@pytest.mark.parametrize(
    ("status", "counts"),
    [(None, True), (500, True), (503, True), (429, True), (408, True), (302, True),
     (200, False), (204, False), (400, False), (410, False), (413, False)],
)  # fmt: skip
def test_what_counts_as_a_failure(status: int | None, counts: bool) -> None:
    assert failed(status) is counts


def test_consecutive_failures_open_it_and_a_success_in_between_resets() -> None:
    b = Breaker(POLICY)
    assert b.record(True, "HTTP 500", 0) is None
    assert b.record(True, "HTTP 500", 1) is None
    assert b.record(False, "", 2) is None  # the count starts again
    assert b.record(True, "HTTP 500", 3) is None
    assert b.record(True, "HTTP 500", 4) is None
    change = b.record(True, "timeout", 5)
    assert change is not None
    assert change.opened == Opened(15.0, 10.0, "timeout")
    assert b.state is State.OPEN
    assert b.is_open


def opened() -> Breaker:
    b = Breaker(POLICY)
    for t in range(3):
        b.record(True, "HTTP 503", float(t))
    return b  # open at t=2 until 12


@pytest.mark.parametrize(
    ("now", "gate"), [(2.0, Gate.NONE), (11.9, Gate.NONE), (12.0, Gate.PROBE), (99.0, Gate.PROBE)]
)
def test_open_lets_nothing_through_until_the_cooldown_then_one_probe(
    now: float, gate: Gate
) -> None:
    assert opened().gate(now) is gate


def test_a_probe_in_flight_holds_everything_else() -> None:
    b = opened()
    b.probing()
    assert b.state is State.HALF_OPEN
    assert b.gate(100.0) is Gate.NONE


def test_a_successful_probe_closes_it() -> None:
    b = opened()
    b.probing()
    change = b.record(False, "", 13)
    assert change is not None
    assert change.opened is None
    assert b.gate(13) is Gate.ALL
    assert not b.is_open


@pytest.mark.parametrize(
    ("probes", "cooldown"), [(1, 20.0), (2, 35.0), (3, 35.0)]  # doubled, capped at 35
)
def test_failed_probes_reopen_with_the_cooldown_doubled_up_to_the_cap(
    probes: int, cooldown: float
) -> None:
    b = opened()
    now = 12.0
    change = None
    for _ in range(probes):
        assert b.gate(now) is Gate.PROBE
        b.probing()
        change = b.record(True, "HTTP 502", now)
        assert change is not None
        assert change.opened is not None
        now = change.opened.until
    assert change is not None
    assert change.opened is not None
    assert change.opened.cooldown == cooldown


def test_failures_of_attempts_started_before_it_opened_change_nothing() -> None:
    b = opened()
    assert b.record(True, "HTTP 500", 3) is None
    assert b.opened is not None
    assert b.opened.until == 12.0


def test_an_unsent_probe_lets_another_go_now() -> None:
    b = opened()
    b.probing()
    b.unprobed(20.0)
    assert b.gate(20.0) is Gate.PROBE


def test_adopt_takes_the_state_other_replicas_stored() -> None:
    b = Breaker(POLICY)
    b.adopt(Opened(50.0, 10.0, "HTTP 500"))
    assert b.gate(49.0) is Gate.NONE
    assert b.gate(50.0) is Gate.PROBE
    b.adopt(None)  # another replica's probe closed it
    assert b.gate(0.0) is Gate.ALL
    b.adopt(Opened(50.0, 10.0, "x"))
    b.probing()
    b.adopt(None)  # a probe of its own in flight decides for itself
    assert b.state is State.HALF_OPEN
