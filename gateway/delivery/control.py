"""Operator control of the dispatcher (CONTRACT 6): pause, resume and reload, and what
`gateway status` reads of it (breakers, handshakes). A 410 pause ends when the sink changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.config.model import Subscription
from gateway.store.base import PAUSED_GONE, PAUSED_OPERATOR, PausedOn

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.delivery.breakers import Breakers
    from gateway.delivery.handshakes import Handshakes
    from gateway.delivery.ratelimit import Rates
    from gateway.delivery.slots import Slots
    from gateway.store.base import Store

log = logging.getLogger("gateway.delivery")

GONE = PAUSED_GONE  # why a subscription is paused


class Control:
    """Mixed into `Dispatcher`, which provides the state named below."""

    if TYPE_CHECKING:
        _store: Store
        _subs: dict[str, Subscription]
        _paused: dict[str, PausedOn]
        _slots: Slots
        _breakers: Breakers
        _handshakes: Handshakes
        _rates: Rates
        _wake: asyncio.Event
        _clock: Callable[[], float]

    @staticmethod
    async def _sink_changed(sub: Subscription | None, on: PausedOn) -> bool:
        """A 410 pause ends when the subscription's sink changes; an operator's does not."""
        if sub is None or on.reason != GONE:
            return False
        return not await asyncio.to_thread(on.same, sub.sink)

    @property
    def subscriptions(self) -> Mapping[str, Subscription]:
        return self._subs

    def breaker_open(self, name: str) -> bool:
        """Whether the subscription's circuit breaker (CONTRACT 5) holds its attempts back."""
        return self._breakers.is_open(name)

    def handshake(self, name: str) -> Mapping[str, Any] | None:
        """The subscription's validation handshake (CONTRACT 5) for `gateway status`."""
        return self._handshakes.status(name)

    def _handshake_changed(self) -> None:
        self._rates.reconfigure(self._handshakes.rated(self._subs.values()))
        self._wake.set()

    async def pause(self, name: str) -> None:
        """Stop attempts to `name` (on every replica sharing the store: they re-read pauses
        every poll_interval); its events are kept meanwhile."""
        sub = self._subs[name]
        on = replace(await asyncio.to_thread(PausedOn.of, sub.sink), reason=PAUSED_OPERATOR)
        await self._store.pause(name, on, PAUSED_OPERATOR, self._clock())
        self._paused[name] = on
        log.info("subscription paused by an operator", extra={"subscription": name})

    async def resume(self, name: str) -> None:
        """End a pause, an operator's or a 410's alike."""
        await self._store.resume(name)
        self._paused.pop(name, None)
        self._handshakes.retry_now(name)  # a refused handshake is asked again at once
        self._wake.set()
        log.info("subscription resumed by an operator", extra={"subscription": name})

    async def reconfigure(self, subscriptions: Sequence[Subscription]) -> None:
        """Take a reloaded config's subscriptions: new ones are leased from the next pass,
        changed ones' pending rows follow their new settings, removed ones' rows stay pending
        and unattempted (attempts in flight finish with the settings they started with).
        A 410 pause whose sink changed ends."""
        self._subs = {sub.name: sub for sub in subscriptions}
        self._slots.reconfigure({sub.name: sub.delivery.max_in_flight for sub in subscriptions})
        self._breakers.reconfigure(subscriptions)
        self._handshakes.reconfigure(subscriptions)  # a changed sink asks again
        self._rates.reconfigure(self._handshakes.rated(subscriptions))
        for name, on in list(self._paused.items()):
            if await self._sink_changed(self._subs.get(name), on):
                await self._store.resume(name)
                self._paused.pop(name, None)
                log.info("subscription resumed: its sink changed", extra={"subscription": name})
        self._wake.set()

