"""The circuit breaker of one subscription (CONTRACT 5): a pure state machine with the clock
passed in.

CLOSED counts consecutive failed attempts; `failures` of them open it. OPEN lets no attempt
through until its cooldown has passed; then one probe is allowed (HALF_OPEN). The probe's
success closes it; its failure opens it again with the cooldown doubled, up to `max_cooldown`.
What counts as a failure is decided by the caller (`failed`): no response, or a status worth
retrying; a sink that answers, even with a refusal, is up.

State shared across replicas lives in the store as an `Opened` row (`gateway.store.base`);
`adopt` takes what another replica decided. The dispatcher glue is in `gateway.delivery.breakers`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from gateway.config.model import CircuitBreaker
from gateway.delivery import retry
from gateway.store.base import Opened


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"  # one probe in flight


class Gate(Enum):
    """What the breaker lets through now."""

    ALL = "all"
    PROBE = "probe"  # one attempt, after which the breaker decides
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Change:
    """A transition the caller persists and logs."""

    opened: Opened | None  # None: closed


def failed(status: int | None) -> bool:
    """Whether an attempt's result counts against the sink: no response, or a retryable status."""
    if status is not None and 200 <= status < 300:
        return False
    return retry.retryable(status)


class Breaker:
    def __init__(self, policy: CircuitBreaker) -> None:
        self.policy = policy
        self.state = State.CLOSED
        self.failures = 0  # consecutive, while CLOSED
        self.opened: Opened | None = None

    def gate(self, now: float) -> Gate:
        if self.state is State.CLOSED:
            return Gate.ALL
        if self.state is State.OPEN and self.opened is not None and now >= self.opened.until:
            return Gate.PROBE
        return Gate.NONE

    def probing(self) -> None:
        """The probe was sent (the caller won it against other replicas)."""
        self.state = State.HALF_OPEN

    def unprobed(self, now: float) -> None:
        """The probe's row was not sent after all: another probe may go now."""
        if self.state is State.HALF_OPEN and self.opened is not None:
            self.state, self.opened = State.OPEN, replace(self.opened, until=now)

    def record(self, failure: bool, error: str, now: float) -> Change | None:
        """Feed one attempt's result; return the transition it caused, if any."""
        if not failure:
            self.failures = 0
            if self.state is State.CLOSED:
                return None
            self.state, self.opened = State.CLOSED, None
            return Change(None)
        if self.state is State.CLOSED:
            self.failures += 1
            if self.failures < self.policy.failures:
                return None
            return self._open(self.policy.cooldown, error, now)
        if self.state is State.HALF_OPEN:
            previous = self.opened.cooldown if self.opened else self.policy.cooldown
            return self._open(min(previous * 2, self.policy.max_cooldown), error, now)
        return None  # an attempt started before it opened: already open

    def _open(self, cooldown: float, error: str, now: float) -> Change:
        self.state, self.failures = State.OPEN, 0
        self.opened = Opened(now + cooldown, cooldown, error)
        return Change(self.opened)

    def adopt(self, opened: Opened | None) -> None:
        """Take the state another replica stored (read every poll); a probe in flight here
        decides for itself."""
        if self.state is State.HALF_OPEN:
            return
        if opened is None:
            if self.state is State.OPEN:
                self.state, self.opened, self.failures = State.CLOSED, None, 0
            return
        self.state, self.opened = State.OPEN, opened

    @property
    def is_open(self) -> bool:
        return self.state is not State.CLOSED
