"""The validation handshake (CONTRACT 5, `handshake: true`; CE webhook spec 4, abuse protection).

Before the first delivery to a subscription's sink, and again after its sink changes, one
OPTIONS request to the exact sink URI carries `WebHook-Request-Origin` (and, with a
`rate_limit`, `WebHook-Request-Rate` in requests per minute). The sink consents only by
answering 2xx with `WebHook-Allowed-Origin` equal to our origin or `*`: a status alone is not
consent. Until it has consented, the dispatcher leases none of the subscription's SINK rows
(`holds`); its events are kept. A refusal is logged once per change of reason, shown in
`gateway status`, and asked again with backoff. `WebHook-Allowed-Rate` (`*` or requests per
minute) lowers the subscription's rate limit (`rated`).

The latest handshake per subscription is stored with a salted fingerprint of the sink URL it
was made with, so a restart or another replica on the same store adopts a consent instead of
asking again, and a changed sink asks again. No `WebHook-Request-Callback` is sent: consent
must come in the OPTIONS response.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway import redact
from gateway.config.model import Subscription
from gateway.delivery.sender import Answer, Sender
from gateway.errors import StoreUnavailable
from gateway.store.base import Handshake, Store

log = logging.getLogger("gateway.delivery")

# Delays before asking again after a refusal or failure (the last repeats): a subscriber that
# starts consenting gets its events within minutes at worst.
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Longest excerpt of a header value quoted in a refusal's reason.
QUOTED = 80


@dataclass(frozen=True, slots=True)
class Consent:
    rate: float | None  # allowed requests per second; None: unlimited


def verdict(answer: Answer, origin: str) -> Consent | str:
    """What an OPTIONS answer means (CE webhook 4): consent, or why not."""
    if answer.status is None:
        return answer.error or "no response"
    if answer.status == 405:
        return "HTTP 405: the sink does not take the validation handshake (OPTIONS)"
    if not 200 <= answer.status < 300:
        return f"HTTP {answer.status}"
    allowed = answer.headers.get("webhook-allowed-origin")
    if allowed is None:
        return f"HTTP {answer.status} without WebHook-Allowed-Origin: no consent"
    allowed = allowed.strip()
    if allowed != "*" and allowed.lower() != origin.lower():
        return f"WebHook-Allowed-Origin {allowed[:QUOTED]!r} is not {origin!r}"
    rate = answer.headers.get("webhook-allowed-rate", "*").strip()
    if rate == "*":
        return Consent(None)
    if not rate.isdigit() or int(rate) <= 0:
        return f"WebHook-Allowed-Rate {rate[:QUOTED]!r} is not * or a positive integer"
    return Consent(int(rate) / 60.0)  # per minute on the wire


def per_minute(rate: float | None) -> str:
    return "*" if rate is None else f"{rate * 60:g}/m"


@dataclass(eq=False)
class _State:
    sub: Subscription
    made: Handshake | None = None  # the latest handshake that applies to the current sink
    fingerprint: str | None = None  # of the current sink, once computed
    failures: int = 0
    next_try: float = 0.0
    task: asyncio.Task[None] | None = None
    logged: str | None = None  # the refusal last logged
    matched: dict[str, bool] = field(default_factory=dict)  # stored fingerprint -> our sink?

    @property
    def consented(self) -> bool:
        return self.made is not None and self.made.error is None


class Handshakes:
    """The dispatcher's view of the handshakes of its `handshake: true` subscriptions."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        clock: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock
        self._on_change = on_change
        self._states: dict[str, _State] = {}

    def reconfigure(self, subscriptions: Iterable[Subscription]) -> None:
        """Keep what is known of unchanged sinks; a new or changed sink needs a handshake."""
        found: dict[str, _State] = {}
        for sub in subscriptions:
            if not sub.delivery.handshake:
                continue
            state = self._states.get(sub.name)
            if state is not None and state.sub.sink == sub.sink:
                state.sub = sub
            else:
                state = _State(sub)
            found[sub.name] = state
        for name, state in self._states.items():
            if found.get(name) is not state and state.task is not None:
                state.task.cancel()
        self._states = found

    async def refresh(self) -> None:
        """Adopt handshakes stored by other replicas or by this process's previous run."""
        if not self._states:
            return
        stored = await self._store.handshakes()
        changed = False
        for name, state in list(self._states.items()):
            made = stored.get(name)
            if made is None or made.origin != self._sender.origin or state.task is not None:
                continue
            if state.made is not None and made.at <= state.made.at:
                continue
            if not await self._matches(state, made.fingerprint):
                continue
            if self._states.get(name) is state:
                self._settle(state, made)
                changed = True
        if changed:
            self._on_change()

    async def _matches(self, state: _State, fingerprint: str) -> bool:
        if fingerprint == state.fingerprint:
            return True
        if fingerprint not in state.matched:
            # A slow hash: off the event loop, once per stored fingerprint.
            same = await asyncio.to_thread(redact.matches, state.sub.sink, fingerprint)
            state.matched[fingerprint] = same
        return state.matched[fingerprint]

    def holds(self, name: str) -> bool:
        """No SINK row of `name` may be leased: its sink has not consented (yet)."""
        state = self._states.get(name)
        return state is not None and not state.consented

    def start_due(self, now: float) -> None:
        """Start the handshakes that are due (one at a time per subscription)."""
        for state in self._states.values():
            if not state.consented and state.task is None and state.next_try <= now:
                state.task = asyncio.create_task(
                    self._ask(state), name=f"handshake:{state.sub.name}"
                )

    def next_try(self, now: float) -> float | None:
        """When the next refused handshake is asked again."""
        times = [
            max(s.next_try, now)
            for s in self._states.values()
            if not s.consented and s.task is None
        ]
        return min(times) if times else None

    def retry_now(self, name: str) -> None:
        """An operator's `resume`: ask a refused sink again without waiting for the backoff."""
        state = self._states.get(name)
        if state is not None:
            state.next_try = 0.0

    def rated(self, subscriptions: Iterable[Subscription]) -> list[Subscription]:
        """The subscriptions with their rate limit lowered to what their sink allowed."""
        out = []
        for sub in subscriptions:
            state = self._states.get(sub.name)
            allowed = state.made.allowed_rate if state and state.made else None
            if state is not None and state.consented and allowed is not None:
                own = sub.delivery.rate_limit
                rate = allowed if own is None else min(own, allowed)
                sub = replace(sub, delivery=replace(sub.delivery, rate_limit=rate))
            out.append(sub)
        return out

    def status(self, name: str) -> Mapping[str, Any] | None:
        """For `gateway status`: None when the subscription makes no handshake."""
        state = self._states.get(name)
        if state is None:
            return None
        made = state.made
        shown = "pending" if made is None else "accepted" if made.error is None else "refused"
        return {
            "state": shown,
            "origin": self._sender.origin,
            "allowed_rate": per_minute(made.allowed_rate) if state.consented and made else None,
            "error": made.error if made else None,
        }

    async def stop(self) -> None:
        tasks = [s.task for s in self._states.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one handshake --------------------------------------------------------------------

    async def _ask(self, state: _State) -> None:
        sub, origin = state.sub, self._sender.origin
        try:
            if state.fingerprint is None:
                state.fingerprint = await asyncio.to_thread(redact.fingerprint, sub.sink)
            extra = {"WebHook-Request-Origin": origin}
            if sub.delivery.rate_limit is not None:
                extra["WebHook-Request-Rate"] = str(max(1, math.ceil(sub.delivery.rate_limit * 60)))
            answer = await self._sender.options(sub, extra)
            found = verdict(answer, origin)
            now = self._clock()
            if isinstance(found, Consent):
                made = Handshake(state.fingerprint, origin, found.rate, None, now)
            else:
                made = Handshake(state.fingerprint, origin, None, found, now)
            self._settle(state, made)
            try:
                await self._store.save_handshake(sub.name, made)
            except StoreUnavailable as exc:  # held here; asked again after a restart
                log.warning(
                    "handshake not stored (%s)", exc.detail, extra={"subscription": sub.name}
                )
        except Exception:
            log.exception("validation handshake failed unexpectedly",
                          extra={"subscription": sub.name})  # fmt: skip
            state.next_try = self._clock() + BACKOFF[-1]
        finally:
            state.task = None
            self._on_change()

    def _settle(self, state: _State, made: Handshake) -> None:
        """Take a handshake's result (this process's or a stored one); log changes."""
        state.made = made
        name = state.sub.name
        if made.error is None:
            state.failures = 0
            log.info(
                "validation handshake accepted (allowed rate %s)", per_minute(made.allowed_rate),
                extra={"subscription": name},
            )  # fmt: skip
            state.logged = None
            return
        state.next_try = made.at + BACKOFF[min(state.failures, len(BACKOFF) - 1)]
        state.failures += 1
        if made.error != state.logged:
            log.warning(
                "validation handshake refused, deliveries held: %s", made.error,
                extra={"subscription": name},
            )  # fmt: skip
            state.logged = made.error
