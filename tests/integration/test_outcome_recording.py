"""Outcomes survive a store blip: an outcome the store refuses is recorded again with backoff
until its lease ends, so a delivered event is not delivered again; refusals are logged once per
interval, with a count."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from gateway.config.model import Delivery, Subscription
from gateway.errors import StoreUnavailable
from gateway.ops.logs import Throttled
from gateway.store.base import Outcome
from gateway.store.memory import MemoryStore
from tests.integration.dispatching import dispatching
from tests.integration.subscriber import Subscriber
from tests.unit.test_store_contract import WINDOW, routed


class Blipping(MemoryStore):
    """A store whose first `failures` outcome writes fail, as during a database restart."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreUnavailable("store unavailable: PostgreSQL: the database is restarting")
        await super().finish(outcomes, now)


async def test_an_outcome_refused_during_a_blip_is_recorded_later(
    subscriber: tuple[Subscriber, str],
) -> None:
    sub, base = subscriber
    store = Blipping(failures=3)
    await store.open()
    await store.append([routed("e1", "all")], 0.0, WINDOW)
    subscription = Subscription("all", f"{base}/all", delivery=Delivery(timeout=5.0))
    async with dispatching(store, [subscription]):
        await sub.wait_for("/all", 1)
        for _ in range(100):
            if await store.pending() == 0:
                break
            await asyncio.sleep(0.05)
    assert await store.pending() == 0, "the outcome was dropped"
    assert store.calls == 4
    assert len(sub.at("/all")) == 1  # delivered once: nothing to send again


def test_throttled_warnings_say_how_many_were_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("gateway.test.throttled")
    throttled = Throttled(log, interval=3600.0)
    with caplog.at_level(logging.WARNING, logger=log.name):
        for n in range(500):
            throttled.warning("ingest refused with %d: %s", 503, f"try {n}")
    assert [r.getMessage() for r in caplog.records] == ["ingest refused with 503: try 0"]
    throttled._last -= 3600.0  # the interval has passed
    with caplog.at_level(logging.WARNING, logger=log.name):
        throttled.warning("ingest refused with %d: %s", 503, "try 500")
    assert caplog.records[-1].getMessage().startswith(
        "ingest refused with 503: try 500 (500 times in the last"
    )
