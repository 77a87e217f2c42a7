"""Scale-out: several real `gateway serve` replicas on one PostgreSQL database.

Runs when `GATEWAY_TEST_POSTGRES` names a database; each run gets a schema of its own. Every
replica has its own deployment folder (its own port, and an `X-Replica` header on its
subscriptions, so the subscriber can tell who delivered what); the subscriptions are the same.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.conftest import write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port
from tests.unit.test_store_contract import postgres_schema

EVENTS = 2000
SHIPPED = "com.example.order.shipped"
MAX_IN_FLIGHT = 8  # per subscription and replica


@dataclass(frozen=True, slots=True)
class Hit:
    subscription: str
    webhook_id: str
    event_id: str
    replica: str


@dataclass
class Recorder:
    """A real subscriber that records every request and answers 204."""

    hits: list[Hit] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.hits.append(
            Hit(
                request.match_info["name"],
                request.headers["webhook-id"],
                request.headers["ce-id"],
                request.headers["X-Replica"],
            )
        )
        return web.Response(status=204)

    def delivered(self) -> set[tuple[str, str]]:
        return {(hit.subscription, hit.event_id) for hit in self.hits}


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    found = Recorder()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    server = TestServer(app, port=free_port())
    await server.start_server()
    yield found, str(server.make_url("")).rstrip("/")
    await server.close()


def subscriptions(sink: str, replica: str) -> list[dict[str, Any]]:
    delivery = {"mode": "binary", "timeout": "1s", "max_in_flight": MAX_IN_FLIGHT}
    common = {"delivery": delivery, "headers": {"X-Replica": replica}}
    return [
        {"name": "all", "sink": f"{sink}/all", **common},
        {"name": "created", "sink": f"{sink}/created", "types": ["com.example.order.created"],
         **common},
        {"name": "eu", "sink": f"{sink}/eu", "filters": [{"suffix": {"subject": "-eu"}}],
         **common},
    ]


def event(index: int) -> tuple[dict[str, Any], str, set[str]]:
    """The request for the index-th event, its id and the subscriptions it matches."""
    kind = "com.example.order.created" if index % 2 == 0 else SHIPPED
    subject = "order-eu" if index % 3 == 0 else "order-us"
    matches = {"all"} | ({"created"} if index % 2 == 0 else set()) | (
        {"eu"} if index % 3 == 0 else set()
    )
    built = order(type=kind, subject=subject)
    return structured(built), built.get_id(), matches


async def start_replicas(
    root: Path, url: str, sink: str, count: int, processes: list[Process]
) -> list[Process]:
    started: list[Process] = []
    for index in range(count):
        port = free_port()
        config = write_deployment(
            root / f"r{index}",
            subscriptions(sink, f"r{index}"),
            gateway={"store": url, "server": {"port": port, "shutdown_grace": "2s"},
                     "dispatch": {"poll_interval": "200ms"}},
        )
        started.append(Process(config, port, root / f"r{index}.log"))
    processes.extend(started)
    await asyncio.gather(*(replica.start() for replica in started))
    return started


@dataclass
class Load:
    """Producers spreading events over the replicas; `expected` is what must arrive."""

    replicas: list[Process]
    expected: dict[str, set[str]] = field(default_factory=dict)  # event id -> subscriptions
    sent: int = 0
    refused: int = 0

    async def run(self, total: int, concurrency: int = 32) -> None:
        indexes = iter(range(total))
        targets = itertools.cycle(self.replicas)
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(
                *(self._produce(http, indexes, targets) for _ in range(concurrency))
            )

    async def _produce(
        self, http: aiohttp.ClientSession, indexes: Any, targets: Any
    ) -> None:
        for index in indexes:
            request, ident, matches = event(index)
            target: Process = next(targets)
            self.sent += 1
            try:
                async with http.post(f"{target.url}/events", **request) as resp:
                    if resp.status == 202:
                        self.expected[ident] = matches
                        continue
            except (aiohttp.ClientError, OSError):
                pass
            self.refused += 1  # the replica is gone; a real producer would try another

    def pairs(self) -> set[tuple[str, str]]:
        return {(name, ident) for ident, names in self.expected.items() for name in names}


async def delivered_all(recorder: Recorder, expected: set[tuple[str, str]], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not expected <= recorder.delivered():
        await asyncio.sleep(0.2)
    missing = expected - recorder.delivered()
    assert not missing, f"{len(missing)} of {len(expected)} deliveries never arrived"


async def test_replicas_share_the_work_and_deliver_each_event_once(
    tmp_path: Path, recorder: tuple[Recorder, str], processes: list[Process]
) -> None:
    subscriber, sink = recorder
    async with postgres_schema(pool_max=4) as url:
        replicas = await start_replicas(tmp_path, url, sink, 3, processes)
        load = Load(replicas)
        await load.run(EVENTS)
        assert len(load.expected) == EVENTS, f"{load.refused} requests refused"
        await delivered_all(subscriber, load.pairs(), within=60)
        for replica in replicas:
            replica.stop()

    twice = [key for key, n in Counter(h.webhook_id for h in subscriber.hits).items() if n > 1]
    assert not twice, f"{len(twice)} deliveries arrived twice while every replica was live"
    assert len(subscriber.hits) == len(load.pairs())  # and nothing unexpected arrived
    by_replica = Counter(hit.replica for hit in subscriber.hits)
    print(f"deliveries per replica: {dict(sorted(by_replica.items()))}")
    assert set(by_replica) == {"r0", "r1", "r2"}  # every replica delivered its share


async def test_a_killed_replicas_accepted_events_are_still_delivered(
    tmp_path: Path, recorder: tuple[Recorder, str], processes: list[Process]
) -> None:
    subscriber, sink = recorder
    async with postgres_schema(pool_max=4) as url:
        victim, *others = await start_replicas(tmp_path, url, sink, 3, processes)
        load = Load([victim, *others])
        producing = asyncio.create_task(load.run(EVENTS // 2))
        while len(load.expected) < EVENTS // 6:
            await asyncio.sleep(0.01)
        victim.kill(signal.SIGKILL)  # mid-run: it has accepted events and holds leases
        victim.wait()
        await producing
        assert load.refused > 0, "the kill came after the run"
        # The victim's leases expire after the delivery timeout plus the dispatcher's margin.
        await delivered_all(subscriber, load.pairs(), within=50)
        for replica in others:
            replica.stop()

    counts = Counter(hit.webhook_id for hit in subscriber.hits)
    twice = {key for key, n in counts.items() if n > 1}
    first: dict[str, Hit] = {}
    for hit in subscriber.hits:
        first.setdefault(hit.webhook_id, hit)
    print(
        f"accepted {len(load.expected)} events, {load.refused} requests refused after the kill, "
        f"{len(twice)} deliveries repeated (in flight at the victim when it died)"
    )
    # A repeat is only ever an attempt the victim had in flight when it died.
    assert all(first[key].replica == "r0" for key in twice)
    assert len(twice) <= 3 * MAX_IN_FLIGHT
