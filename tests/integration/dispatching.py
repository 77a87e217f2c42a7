"""A `Dispatcher` over a given store and subscriptions, with a real sender, started and stopped
around a test: for tests of the dispatcher's own rules without the whole gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from gateway.config.model import Dispatch, Subscription
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.sender import Sender
from gateway.ops.metrics import Metrics
from gateway.store.base import Store
from tests.unit.test_store_contract import WINDOW


@asynccontextmanager
async def dispatching(
    store: Store,
    subscriptions: Sequence[Subscription],
    poll_interval: float = 0.05,
    metrics: Metrics | None = None,
) -> AsyncIterator[Dispatcher]:
    sender = Sender()
    await sender.start(store.identity)
    dispatcher = Dispatcher(
        store, sender, subscriptions, Dispatch(poll_interval=poll_interval),
        retention=3600.0, dedupe_window=WINDOW, metrics=metrics,
    )  # fmt: skip
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop(1.0)
        await sender.close()
