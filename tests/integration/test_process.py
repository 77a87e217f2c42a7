"""The real `gateway serve` process: crash recovery under load, graceful stop, the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.conftest import write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port, run_cli


class Recorder:
    """A subscriber that takes `delay` seconds per request and records ce-id headers."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.ids: list[str] = []
        self.completed = 0
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.ids.append(request.headers.get("ce-id", ""))
        await asyncio.sleep(self.delay)
        self.completed += 1
        return web.Response(status=204)


@pytest.fixture
async def recorder_server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    server = TestServer(recorder.app, port=free_port())
    await server.start_server()
    yield recorder, str(server.make_url("")).rstrip("/")
    await server.close()


def deploy(tmp_path: Path, sink: str, port: int, **delivery: Any) -> Path:
    return write_deployment(
        tmp_path,
        [{"name": "crashy", "sink": f"{sink}/hook",
          "delivery": {"max_in_flight": 4, "timeout": "5s",
                       "retry": {"initial_delay": "50ms", "max_delay": "200ms"}, **delivery}}],
        gateway={"server": {"port": port, "shutdown_grace": "5s"},
                 "dispatch": {"poll_interval": "100ms"}},
    )


async def test_sigkill_under_load_loses_no_accepted_event(
    tmp_path: Path, recorder_server: tuple[Recorder, str], processes: list[Process]
) -> None:
    recorder, sink = recorder_server
    recorder.delay = 0.01  # slow enough that a backlog builds up before the kill
    port = free_port()
    gateway = Process(deploy(tmp_path, sink, port), port, tmp_path / "gateway.log")
    processes.append(gateway)
    await gateway.start()

    accepted: list[str] = []
    stop = asyncio.Event()

    async def produce(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            event = order()
            try:
                async with http.post(f"{gateway.url}/events", **structured(event)) as resp:
                    if resp.status == 202:
                        accepted.append(event.get_id())
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as http:
        producers = [asyncio.create_task(produce(http)) for _ in range(8)]
        while len(accepted) < 300:
            await asyncio.sleep(0.02)
        gateway.kill(signal.SIGKILL)
        gateway.wait()
        stop.set()
        await asyncio.gather(*producers)

    assert len(recorder.ids) < len(accepted), "kill came too late to test recovery"
    await gateway.start()
    deadline = time.monotonic() + 30
    while set(accepted) - set(recorder.ids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    missing = set(accepted) - set(recorder.ids)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted events never arrived"


async def test_sigterm_finishes_in_flight_deliveries_and_exits_0(
    tmp_path: Path, recorder_server: tuple[Recorder, str], processes: list[Process]
) -> None:
    recorder, sink = recorder_server
    recorder.delay = 1.0
    gateway = Process(deploy(tmp_path, sink, port := free_port()), port, tmp_path / "g.log")
    processes.append(gateway)
    await gateway.start()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/events", **structured(order())) as resp,
    ):
        assert resp.status == 202
    while not recorder.ids:
        await asyncio.sleep(0.02)
    gateway.kill(signal.SIGTERM)
    assert await asyncio.to_thread(gateway.wait) == 0
    assert recorder.completed == 1  # the in-flight attempt was allowed to finish
    assert "stopped" in gateway.log.read_text()


async def test_serve_logs_failed_attempts_not_successes_and_runs_on_uvloop(
    tmp_path: Path, recorder_server: tuple[Recorder, str], processes: list[Process]
) -> None:
    recorder, sink = recorder_server
    port = free_port()
    config = write_deployment(
        tmp_path,
        [{"name": "healthy", "sink": f"{sink}/hook"},
         {"name": "refused", "sink": f"http://127.0.0.1:{free_port()}/hook"}],
        gateway={"server": {"port": port}},
    )
    gateway = Process(config, port, tmp_path / "gateway.log")
    processes.append(gateway)
    await gateway.start()
    event = order()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/events", **structured(event)) as resp,
    ):
        assert resp.status == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        recorder.completed and "subscription=refused" in gateway.log.read_text()
    ):
        await asyncio.sleep(0.05)
    gateway.kill(signal.SIGTERM)
    assert await asyncio.to_thread(gateway.wait) == 0
    assert recorder.ids == [event.get_id()]
    lines = gateway.log.read_text().splitlines()
    # A failed attempt is logged at INFO with its fields; a delivered one only at DEBUG (-v).
    failed = [line for line in lines if "subscription=refused" in line]
    assert failed, lines
    assert " INFO gateway.delivery delivery retry" in failed[0]
    assert "error=connection refused" in failed[0]
    assert not [line for line in lines if "subscription=healthy" in line], lines
    # uvloop is a dependency wherever it is built (not on Windows).
    loop = "asyncio" if sys.platform == "win32" else "uvloop"
    assert any(f"(event loop: {loop})" in line for line in lines), lines


def test_check_accepts_the_example_deployment() -> None:
    result = run_cli("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_reports_file_line_and_path(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, [{"name": "x", "sink": "http://127.0.0.1:1/x",
                                        "delivery": {"retry": {"max_attempts": 0}}}])
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 1
    line = result.stdout.strip().splitlines()[0]
    assert line.endswith("subscriptions[0].delivery.retry.max_attempts: must be >= 1"), line
    assert "test.yaml:" in line
    as_json = json.loads(run_cli("check", "--json", "-c", str(path)).stdout)
    assert as_json["ok"] is False
    assert as_json["problems"][0]["path"] == "subscriptions[0].delivery.retry.max_attempts"
    assert isinstance(as_json["problems"][0]["line"], int)


def test_route_explains_each_subscription(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, [
        {"name": "orders", "sink": "http://127.0.0.1:1/o", "types": ["com.example.order.created"]},
        {"name": "others", "sink": "http://127.0.0.1:1/x", "source": "/nowhere"},
    ])
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"specversion": "1.0", "id": "1", "source": "/shop",
                                 "type": "com.example.order.created",
                                 "data": {"order_id": "1", "amount": 5}}))
    result = run_cli("route", str(event), "--json", "-c", str(path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"]["valid"] is True
    verdicts = {s["name"]: s["matched"] for s in report["subscriptions"]}
    assert verdicts == {"orders": True, "others": False}
