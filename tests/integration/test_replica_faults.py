"""Real `gateway serve` replicas on one PostgreSQL database through faults: every session of
the gateway terminated under load (a database restart, as the replicas see it, without
restarting the server other tests share), and a replica killed and restarted.

Runs when `GATEWAY_TEST_POSTGRES` names a database; each run gets a schema of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.store.postgres import parse_url
from tests.integration.conftest import write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port
from tests.unit.test_store_contract import postgres_schema, with_query

MAX_IN_FLIGHT = 8


@dataclass
class Sink:
    """A real subscriber: records every request; while `holding` is set it does not answer."""

    hits: list[str] = field(default_factory=list)  # webhook-ids, in arrival order
    events: set[str] = field(default_factory=set)  # ce-ids delivered (answered 204)
    holding: bool = False
    held: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        if self.holding:
            self.held += 1
            await self.release.wait()  # until the gateway that sent it is gone
            return web.Response(status=503)
        self.hits.append(request.headers["webhook-id"])
        self.events.add(request.headers["ce-id"])
        return web.Response(status=204)


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, str]]:
    found = Sink()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    server = TestServer(app, port=free_port())
    await server.start_server()
    yield found, str(server.make_url("")).rstrip("/")
    found.release.set()
    await server.close()


def replica(
    root: Path, name: str, url: str, sink: str, timeout: str = "2s"
) -> Process:
    port = free_port()
    config = write_deployment(
        root / name,
        [{"name": "all", "sink": f"{sink}/all",
          "delivery": {"timeout": timeout, "max_in_flight": MAX_IN_FLIGHT}}],
        gateway={"store": with_query(url, replica=name), "server": {"port": port},
                 "dispatch": {"poll_interval": "200ms"}},
    )
    return Process(config, port, root / f"{name}.log")


async def delivered(sink: Sink, expected: set[str], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not expected <= sink.events:
        await asyncio.sleep(0.1)
    missing = expected - sink.events
    assert not missing, f"{len(missing)} of {len(expected)} accepted events never arrived"


@dataclass
class Producers:
    """Post events round-robin; a 503 or 429 must carry Retry-After and is tried again."""

    targets: list[Process]
    accepted: set[str] = field(default_factory=set)
    refusals: Counter[int] = field(default_factory=Counter)

    async def run(self, total: int, concurrency: int = 16) -> None:
        ids = iter(range(total))
        targets = itertools.cycle(self.targets)
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(self._one(http, ids, targets) for _ in range(concurrency)))

    async def _one(self, http: aiohttp.ClientSession, ids: Any, targets: Any) -> None:
        for _ in ids:
            event = order()
            while True:
                target: Process = next(targets)
                async with http.post(f"{target.url}/events", **structured(event)) as resp:
                    if resp.status == 202:
                        self.accepted.add(event.get_id())
                        break
                    assert resp.status in (429, 503), await resp.text()
                    assert resp.headers.get("Retry-After"), "a refusal without Retry-After"
                    self.refusals[resp.status] += 1
                await asyncio.sleep(0.05)  # sooner than Retry-After asks: the test is short


async def test_terminating_every_session_under_load_loses_nothing(
    tmp_path: Path, sink: tuple[Sink, str], processes: list[Process]
) -> None:
    subscriber, base = sink
    name = f"gw_faults_{secrets.token_hex(4)}"
    async with postgres_schema(pool_max=4, timeout=2, application_name=name) as url:
        replicas = [replica(tmp_path, f"r{i}", url, base) for i in range(2)]
        processes.extend(replicas)
        await asyncio.gather(*(r.start() for r in replicas))
        producers = Producers(replicas)
        producing = asyncio.create_task(producers.run(600))
        admin = await asyncpg.connect(parse_url(url)[0])
        terminated = 0
        try:
            for _ in range(3):  # as the replicas see a database restart
                await asyncio.sleep(0.4)
                rows = await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()", name,
                )
                terminated += len(rows)
            await producing
        finally:
            await admin.close()
        assert terminated, "no session was terminated"
        assert len(producers.accepted) == 600
        await delivered(subscriber, producers.accepted, within=30)
        for r in replicas:
            r.stop()
    repeats = sum(n - 1 for n in Counter(subscriber.hits).values())
    print(f"{terminated} sessions terminated; refusals {dict(producers.refusals)}; "
          f"{repeats} deliveries repeated")
    assert repeats <= 5, f"{repeats} deliveries repeated"


async def test_a_killed_replica_delivers_its_leased_rows_soon_after_its_restart(
    tmp_path: Path, sink: tuple[Sink, str], processes: list[Process]
) -> None:
    subscriber, base = sink
    async with postgres_schema(pool_max=4) as url:
        # A long delivery timeout: leases last 60 s + 30 s, far longer than this test waits.
        victim = replica(tmp_path, "gw-0", url, base, timeout="60s")
        processes.append(victim)
        await victim.start()
        subscriber.holding = True  # attempts hang: the victim holds leases when it dies
        ids = set()
        async with aiohttp.ClientSession() as http:
            for _ in range(5):
                event = order()
                async with http.post(f"{victim.url}/events", **structured(event)) as resp:
                    assert resp.status == 202
                ids.add(event.get_id())
        while subscriber.held < len(ids):  # every row leased, every attempt hanging
            await asyncio.sleep(0.05)
        victim.kill(signal.SIGKILL)
        victim.wait()
        subscriber.holding = False
        subscriber.release.set()
        await victim.start()  # the same identity: its leases come back at once
        await delivered(subscriber, ids, within=15)
        victim.stop()
    assert f"gave back {len(ids)} leases" in victim.log.read_text()
