"""Per-key ordering (CONTRACT 5, `delivery.ordering: {key: partitionkey}`), black-box: real
HTTP subscribers, the real `gateway serve` process across a SIGKILL, two PostgreSQL replicas on
one schema, and a NATS JetStream sink."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.brokers import NATS, needs, unique
from tests.integration.conftest import Start, write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port
from tests.integration.subscriber import Subscriber
from tests.unit.test_store_contract import postgres_schema

ORDERED = {"key": "partitionkey"}
RETRY = {"initial_delay": "20ms", "max_delay": "50ms", "max_attempts": 200, "jitter": 0}


class KeyedSubscriber(Subscriber):
    """The test subscriber, recording each request's (partitionkey, ce-id) and how many
    requests of one key were open at once; `fail` makes one event's attempts answer 503
    until `release`."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.seen: dict[str, list[str]] = defaultdict(list)  # key -> ids in arrival order
        self.open: dict[str, int] = defaultdict(int)
        self.overlap = 0  # the most requests of one key open at once, minus one
        self.failing: set[str] = set()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._keyed)

    def fail(self, event_id: str) -> None:
        self.failing.add(event_id)

    def release(self, event_id: str) -> None:
        self.failing.discard(event_id)

    def first_arrivals(self, key: str) -> list[str]:
        return list(dict.fromkeys(self.seen[key]))

    async def _keyed(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("ce-partitionkey", "")
        ident = request.headers.get("ce-id", "")
        self.seen[key].append(ident)
        self.open[key] += 1
        self.overlap = max(self.overlap, self.open[key] - 1) if key else self.overlap
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            failed = ident in self.failing
            response = await self._handle(request)
            return web.Response(status=503) if failed else response
        finally:
            self.open[key] -= 1


@pytest.fixture
async def subscriber() -> AsyncIterator[tuple[Subscriber, str]]:
    """The `start` fixture's subscriber, keyed."""
    sub = KeyedSubscriber()
    server = TestServer(sub.app)
    await server.start_server()
    yield sub, str(server.make_url("")).rstrip("/")
    await server.close()


def keyed(key: str, index: int) -> Any:
    return order(order_id=f"{key}-{index}", partitionkey=key)


async def test_a_failing_head_holds_back_only_its_key(start: Start) -> None:
    gw = await start([{
        "name": "ordered", "sink": "{sink}/hook",
        "delivery": {"max_in_flight": 8, "ordering": ORDERED, "retry": RETRY},
    }])  # fmt: skip
    sub = gw.subscriber
    assert isinstance(sub, KeyedSubscriber)
    sub.fail("A-0")
    for index in range(10):  # one producer per key, in order; keys interleaved
        for key in ("A", "B", "C"):
            response = await gw.post(**structured(keyed(key, index)))
            assert response.status == 202
    # The other keys flow while A's head keeps failing ...
    await sub.until(
        lambda: len(sub.seen["B"]) >= 10 and len(sub.seen["C"]) >= 10, 10, "keys B and C"
    )
    await sub.until(lambda: len(sub.seen["A"]) >= 3, 10, "A's head retried")
    # ... and nothing of A after its head was attempted while the head failed.
    assert set(sub.seen["A"]) == {"A-0"}
    sub.release("A-0")
    await sub.until(lambda: len(set(sub.seen["A"])) >= 10, 10, "key A after its head")
    for key in ("A", "B", "C"):
        assert sub.first_arrivals(key) == [f"{key}-{i}" for i in range(10)], key
    assert sub.overlap == 0, "two events of one key were in flight at once"


async def test_events_without_the_key_attribute_are_unordered(start: Start) -> None:
    gw = await start([{
        "name": "ordered", "sink": "{sink}/hook",
        "delivery": {"max_in_flight": 8, "ordering": ORDERED, "retry": RETRY},
    }])  # fmt: skip
    sub = gw.subscriber
    assert isinstance(sub, KeyedSubscriber)
    sub.fail("lonely-0")
    for index in range(5):
        assert (await gw.post(**structured(order(order_id=f"lonely-{index}")))).status == 202
    # No key: one failing event holds back none of the others.
    await sub.until(lambda: len(set(sub.seen[""])) >= 5, 10, "unkeyed events")
    sub.release("lonely-0")
    await sub.until(lambda: sub.seen[""].count("lonely-0") >= 2, 10, "the failed one again")


# -- the real process, across a SIGKILL ---------------------------------------------------------


@contextlib.asynccontextmanager
async def keyed_server(delay: float) -> AsyncIterator[tuple[KeyedSubscriber, str]]:
    sub = KeyedSubscriber(delay)
    server = TestServer(sub.app, port=free_port())
    await server.start_server()
    try:
        yield sub, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def deploy(root: Path, sink: str, port: int, store: str | None = None) -> Path:
    gateway: dict[str, Any] = {"server": {"port": port, "shutdown_grace": "2s"},
                               "dispatch": {"poll_interval": "100ms"}}
    if store:
        gateway["store"] = store
    return write_deployment(
        root,
        [{"name": "ordered", "sink": f"{sink}/hook",
          "delivery": {"max_in_flight": 16, "timeout": "5s", "ordering": ORDERED,
                       "retry": RETRY}}],
        gateway=gateway,
    )


async def produce(targets: list[Process], keys: list[str], per_key: int) -> list[str]:
    """One producer per key posting its events in order (each after the previous 202), spread
    over `targets`; returns the ids accepted."""
    accepted: list[str] = []

    async def one_key(http: aiohttp.ClientSession, key: str) -> None:
        for index in range(per_key):
            target = targets[index % len(targets)]
            async with http.post(f"{target.url}/events", **structured(keyed(key, index))) as r:
                assert r.status == 202, await r.text()
                accepted.append(f"{key}-{index}")

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one_key(http, key) for key in keys))
    return accepted


async def arrived(sub: KeyedSubscriber, accepted: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    got = lambda: {i for ids in sub.seen.values() for i in ids}  # noqa: E731
    while set(accepted) - got() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    missing = set(accepted) - got()
    assert not missing, f"{len(missing)} of {len(accepted)} accepted events never arrived"


async def test_order_per_key_holds_across_a_sigkill_of_the_process(
    tmp_path: Path, processes: list[Process]
) -> None:
    keys = [f"k{i}" for i in range(5)]
    async with keyed_server(delay=0.02) as (sub, sink):
        port = free_port()
        gateway = Process(deploy(tmp_path, sink, port), port, tmp_path / "gateway.log")
        processes.append(gateway)
        await gateway.start()
        accepted = await produce([gateway], keys, 40)
        # Killed with a backlog: each key has a head in flight and rows queued behind it.
        assert len({i for ids in sub.seen.values() for i in ids}) < len(accepted)
        gateway.kill(signal.SIGKILL)
        gateway.wait()
        await gateway.start()
        await arrived(sub, accepted, within=30)
        gateway.stop()
    for key in keys:
        # At least once: the head in flight at the kill may come twice, but never after a
        # later event of its key.
        assert sub.first_arrivals(key) == [f"{key}-{i}" for i in range(40)], key
    assert sub.overlap == 0


async def test_order_per_key_holds_across_two_postgres_replicas(
    tmp_path: Path, processes: list[Process]
) -> None:
    keys = [f"k{i}" for i in range(6)]
    async with postgres_schema(pool_max=4) as url, keyed_server(delay=0.005) as (sub, sink):
        replicas = []
        for index in range(2):
            port = free_port()
            config = deploy(tmp_path / f"r{index}", sink, port, url)
            replicas.append(Process(config, port, tmp_path / f"r{index}.log"))
        processes.extend(replicas)
        await asyncio.gather(*(replica.start() for replica in replicas))
        # Each key's events alternate between the replicas; both lease every key.
        accepted = await produce(replicas, keys, 30)
        await arrived(sub, accepted, within=30)
        for replica in replicas:
            replica.stop()
    for key in keys:
        assert sub.first_arrivals(key) == [f"{key}-{i}" for i in range(30)], key
    assert sub.overlap == 0, "two replicas had one key in flight at once"


# -- a broker sink: the same dispatcher, so the same order --------------------------------------


@needs(NATS, "NATS")
async def test_order_per_key_holds_in_a_nats_stream(start: Start) -> None:
    import nats

    from tests.integration.test_sink_nats import SERVER, fetch, stream

    nc = await nats.connect(SERVER)
    try:
        subject = unique("orders.")
        await stream(nc, subject)
        gw = await start([{
            "name": "n", "sink": f"{SERVER}/{subject}",
            "delivery": {"mode": "binary", "timeout": "2s", "max_in_flight": 16,
                         "ordering": ORDERED, "retry": RETRY},
        }])  # fmt: skip
        keys = ["A", "B", "C"]

        async def one_key(key: str) -> None:
            for index in range(20):
                assert (await gw.post(**structured(keyed(key, index)))).status == 202

        await asyncio.gather(*(one_key(key) for key in keys))
        got = await fetch(nc, subject, 60)
    finally:
        await nc.close()
    seen: dict[str, list[str]] = defaultdict(list)
    for msg in got:
        headers = msg.headers or {}
        seen[headers["ce-partitionkey"]].append(headers["ce-id"])
    for key in keys:
        assert list(dict.fromkeys(seen[key])) == [f"{key}-{i}" for i in range(20)], key


async def test_order_per_key_holds_when_a_circuit_breaker_closes(start: Start) -> None:
    gw = await start([{
        "name": "ordered", "sink": "{sink}/hook",
        "delivery": {"max_in_flight": 8, "ordering": ORDERED, "retry": RETRY,
                     "circuit_breaker": {"failures": 3, "cooldown": "100ms"}},
    }])  # fmt: skip
    sub = gw.subscriber
    assert isinstance(sub, KeyedSubscriber)
    sub.plan("/hook", 503)  # the sink is down: the breaker opens and gives rows back
    for index in range(8):
        for key in ("A", "B", "C"):
            assert (await gw.post(**structured(keyed(key, index)))).status == 202
    await sub.until(lambda: gw.gateway.dispatcher.breaker_open("ordered"), 10, "breaker open")
    await sub.until(lambda: len(sub.received) >= 6, 10, "failed probes")
    sub.delay = 0.02  # answers take a while: attempts in flight together would show
    sub.plan("/hook", 200)
    await sub.until(lambda: sum(len(set(ids)) for ids in sub.seen.values()) >= 24, 10, "all")
    for key in ("A", "B", "C"):
        assert sub.first_arrivals(key) == [f"{key}-{i}" for i in range(8)], key
    assert sub.overlap == 0
