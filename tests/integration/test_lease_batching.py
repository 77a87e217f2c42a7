"""A subscription near its own `max_in_flight` leases in groups: it waits until a quarter of its
slots are free and starts that many at once (one lease transaction for several rows), and with
nothing in flight it starts at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config.model import Delivery, Subscription
from gateway.store.memory import MemoryStore
from tests.integration.dispatching import dispatching
from tests.unit.test_store_contract import WINDOW, routed

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class Holding:
    """A sink that holds every request until the test releases it."""

    def __init__(self) -> None:
        self.held: list[asyncio.Event] = []
        self.arrived = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/hold", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        gate = asyncio.Event()
        async with self.arrived:
            self.held.append(gate)
            self.arrived.notify_all()
        await gate.wait()
        return web.Response(status=200)

    async def until(self, count: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.held) >= count), 10)

    def release(self, count: int) -> None:
        waiting = [gate for gate in self.held if not gate.is_set()]
        for gate in waiting[:count]:
            gate.set()


@pytest.fixture
async def sink(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[Holding, str]]:
    holding = Holding()
    server = await aiohttp_server(holding.app)
    yield holding, str(server.make_url("/hold"))
    holding.release(len(holding.held))


async def test_a_full_pipeline_refills_a_quarter_at_a_time(sink: tuple[Holding, str]) -> None:
    holding, url = sink
    store = MemoryStore()
    await store.open()
    await store.append([routed(f"e{i}", "s") for i in range(30)], 0.0, WINDOW)
    subscription = Subscription("s", url, delivery=Delivery(timeout=10.0, max_in_flight=8))
    async with dispatching(store, [subscription]):
        await holding.until(8)  # nothing in flight: all it may start, at once
        holding.release(1)
        await asyncio.sleep(0.3)  # several polls: one free slot of 8 is not a quarter
        assert len(holding.held) == 8
        holding.release(1)
        await holding.until(10)  # two free: both start
        await asyncio.sleep(0.1)
        assert len(holding.held) == 10
        for _ in range(30):
            holding.release(8)
            if await store.pending() == 0:
                break
            await asyncio.sleep(0.05)
        assert await store.pending() == 0
        assert len(holding.held) == 30
