"""`gateway serve --workers N`: N real worker processes on one port and one PostgreSQL database,
supervised; and the refusal on SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.conftest import write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port, run_cli
from tests.unit.test_store_contract import postgres_dsn, postgres_schema

EVENTS = 300


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Counter[str], str]]:
    """A real subscriber counting each event id it receives."""
    seen: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen[request.headers["ce-id"]] += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/all", handle)
    server = TestServer(app, port=free_port())
    await server.start_server()
    yield seen, str(server.make_url("/all"))
    await server.close()


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


async def post_all(url: str, count: int) -> list[str]:
    ids = []
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            event = order()
            async with http.post(f"{url}/events", **structured(event)) as resp:
                assert resp.status == 202, await resp.text()
            ids.append(event.get_id())
    return ids


async def until(check: object, seconds: float, what: str) -> None:
    for _ in range(int(seconds * 10)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_workers_share_the_port_and_the_database(
    tmp_path: Path, sink: tuple[Counter[str], str]
) -> None:
    postgres_dsn()
    seen, target = sink
    async with postgres_schema() as url:
        port = free_port()
        config = write_deployment(
            tmp_path,
            [{"name": "all", "sink": target, "delivery": {"timeout": "2s"}}],
            gateway={"store": url, "server": {"port": port, "shutdown_grace": "2s"},
                     "dispatch": {"poll_interval": "200ms"}},
        )
        gateway = Process(config, port, tmp_path / "gw.log", extra=("--workers", "2"))
        await gateway.start()
        try:
            assert gateway.proc is not None
            await until(lambda: len(children(gateway.proc.pid)) == 2, 20, "two workers")
            workers = children(gateway.proc.pid)
            ids = await post_all(gateway.url, EVENTS // 2)

            # A worker killed outright is restarted; what it accepted is still delivered.
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            await until(lambda: len(children(gateway.proc.pid) - {victim}) == 2, 20,
                        "the killed worker to be replaced")
            ids += await post_all(gateway.url, EVENTS // 2)
            await until(lambda: all(seen[i] >= 1 for i in ids), 60, "every event delivered")
        finally:
            gateway.kill(signal.SIGTERM)
            code = gateway.wait(30)
        assert code == 0, gateway.log.read_text()
        assert "exited with -9; restarting it" in gateway.log.read_text()
        duplicates = sum(n - 1 for n in seen.values() if n > 1)
        assert duplicates <= 20  # only what the killed worker had in flight


def test_workers_need_postgresql(tmp_path: Path) -> None:
    config = write_deployment(tmp_path, [])
    result = run_cli("serve", "-c", str(config), "--workers", "2")
    assert result.returncode == 1
    assert "--workers needs a PostgreSQL store" in result.stderr
