"""The admin API and its command line against the real `gateway serve` (CONTRACT 6), on SQLite:
status, pause/resume, dead letters and redrive, replay, events show, reload (valid, invalid,
SIGHUP under load, a removed subscription that returns), metrics; every answer checked against
the OpenAPI document."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration import openapi
from tests.integration.conftest import write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port, run_cli
from tests.unit.test_store_contract import postgres_schema

TOKEN = "admin-s3cret"
FAST = {"initial_delay": "50ms", "max_delay": "100ms", "max_attempts": 2, "jitter": 0}


@dataclass
class Hit:
    path: str
    webhook_id: str
    event_id: str
    status: int


@dataclass
class Sink:
    """A real subscriber: records every request; answers `status[path]` (default 204)."""

    hits: list[Hit] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        path = request.match_info["name"]
        status = self.status.get(path, 204)
        self.hits.append(Hit(path, request.headers["webhook-id"], request.headers["ce-id"], status))
        return web.Response(status=status)

    def ok(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path and h.status < 300]

    async def until(self, check: Any, timeout: float = 20.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not reached; hits: {self.hits}")


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    found = Sink()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    server = TestServer(app, port=free_port())
    await server.start_server()
    found.url = str(server.make_url("")).rstrip("/")
    yield found
    await server.close()


def subs(sink: Sink, *names: str, attempts: int = 2) -> list[dict[str, Any]]:
    retry = {**FAST, "max_attempts": attempts}
    return [
        {"name": n, "sink": f"{sink.url}/{n}", "delivery": {"timeout": "2s", "retry": retry}}
        for n in names
    ]


@dataclass
class Deployment:
    root: Path
    config: Path
    process: Process
    admin: str

    def cli(self, *args: str) -> tuple[int, str, str]:
        done = run_cli(*args, "-c", str(self.config))
        return done.returncode, done.stdout, done.stderr

    def json(self, *args: str) -> Any:
        code, out, err = self.cli(*args, "--json")
        assert code == 0, err
        return orjson.loads(out)

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{self.admin}/admin/v1{path}"
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, headers=headers, **kwargs) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def publish(self, count: int = 1, **attrs: Any) -> list[str]:
        ids = []
        async with aiohttp.ClientSession() as http:
            for _ in range(count):
                event = order(**attrs)
                async with http.post(f"{self.process.url}/events", **structured(event)) as resp:
                    assert resp.status == 202, await resp.text()
                ids.append(event.get_id())
        return ids

    def write_subscriptions(self, subscriptions: list[dict[str, Any]]) -> None:
        path = self.config.parent / "subscriptions" / "test.yaml"
        path.write_text(yaml.safe_dump({"subscriptions": subscriptions}))


@pytest.fixture
async def deploy(tmp_path: Path, sink: Sink) -> AsyncIterator[Any]:
    started: list[Process] = []

    async def _deploy(
        *names: str, store: str = "sqlite:///data/gateway.db", attempts: int = 2
    ) -> Deployment:
        port, admin = free_port(), free_port()
        gateway = {
            "server": {"port": port},
            "store": store,
            "admin": {"host": "127.0.0.1", "port": admin, "token": TOKEN},
            "dispatch": {"poll_interval": "100ms"},
        }
        root = tmp_path / f"d{len(started)}"
        config = write_deployment(root, subs(sink, *names, attempts=attempts), gateway)
        process = Process(config, port, root / "gateway.log")
        started.append(process)
        await process.start()
        return Deployment(root, config, process, f"http://127.0.0.1:{admin}")

    yield _deploy
    for process in started:
        process.stop()


async def test_token_required_and_openapi_served(deploy: Any) -> None:
    d = await deploy("billing")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{d.admin}/admin/v1/status") as resp:
            assert resp.status == 401
            assert resp.content_type == "application/problem+json"
        wrong = {"Authorization": "Bearer nope"}
        async with http.get(f"{d.admin}/admin/v1/status", headers=wrong) as resp:
            assert resp.status == 401
    status, document = await d.call("GET", "/openapi.json")
    assert status == 200
    assert document == openapi.DOCUMENT
    code, _, err = d.cli("status", "--token", "nope")
    assert code == 1
    assert "401" in err


async def test_status_pause_resume(deploy: Any, sink: Sink) -> None:
    d = await deploy("billing", "warehouse")
    await d.publish(2)
    await sink.until(lambda: len(sink.ok("billing")) == 2 and len(sink.ok("warehouse")) == 2)
    status = d.json("status")
    openapi.check("status", 200, status)
    assert status["config"]["generation"] == 1
    assert status["config"]["last_error"] is None
    billing = next(s for s in status["subscriptions"] if s["name"] == "billing")
    assert billing | {"oldest_pending_seconds": 0} == billing
    assert (billing["state"], billing["backlog"], billing["delivered"]) == ("active", 0, 2)

    code, out, _ = d.cli("pause", "billing")
    assert code == 0
    assert "billing: paused" in out
    [held] = await d.publish(1)
    await sink.until(lambda: any(h.event_id == held for h in sink.ok("warehouse")))
    status, body = await d.call("GET", "/status")
    openapi.check("status", 200, body)
    billing = next(s for s in body["subscriptions"] if s["name"] == "billing")
    assert (billing["state"], billing["backlog"], billing["paused_reason"]) == (
        "paused", 1, "operator"
    )
    assert not any(h.event_id == held for h in sink.hits if h.path == "billing")
    text = d.cli("status")[1]
    assert "billing" in text
    assert "paused" in text
    assert "BACKLOG" in text

    resumed = d.json("resume", "billing")
    openapi.check("resume", 200, resumed)
    await sink.until(lambda: any(h.event_id == held for h in sink.ok("billing")))
    code, _, err = d.cli("pause", "nobody")
    assert code == 1
    assert "nobody" in err


async def test_dead_letters_redrive_and_events_show(deploy: Any, sink: Sink) -> None:
    sink.status["billing"] = 400  # rejected: dead at once
    d = await deploy("billing")
    ids = await d.publish(3)
    await sink.until(lambda: len([h for h in sink.hits if h.path == "billing"]) == 3)
    await asyncio.sleep(0.3)  # let the outcomes be recorded
    listed = d.json("deadletters", "billing")
    openapi.check("deadletters", 200, listed)
    assert sorted(x["id"] for x in listed["dead_letters"]) == sorted(ids)
    assert {(x["reason"], x["status"], x["attempts"]) for x in listed["dead_letters"]} == {
        ("rejected", 400, 1)
    }
    assert ids[0] in d.cli("deadletters")[1]

    shown = d.json("events", "show", "/shop", ids[0])
    openapi.check("event", 200, shown)
    [delivery] = shown["deliveries"]
    assert delivery["state"] == "dead"
    assert [a["status"] for a in delivery["attempts"]] == [400]
    assert "HTTP 400" in d.cli("events", "show", "/shop", ids[0])[1]
    code, _, err = d.cli("events", "show", "/shop", "missing")
    assert code == 1
    assert "missing" in err

    sink.status["billing"] = 204
    dry = d.json("redrive", "billing", "--dry-run")
    assert dry == {"matched": 3, "queued": 0, "dry_run": True}
    one = d.json("redrive", "billing", "--id", ids[0])
    assert one == {"matched": 1, "queued": 1, "dry_run": False}
    await sink.until(lambda: [h.event_id for h in sink.ok("billing")] == [ids[0]])
    code, out, _ = d.cli("redrive", "billing", "--filter", f"id = '{ids[1]}'")
    assert code == 0
    assert out.strip() == "redrive billing: 1 matched, 1 queued"
    status, rest = await d.call("POST", "/subscriptions/billing/redrive", json={})
    openapi.check("redrive", status, rest)
    assert rest["queued"] == 1
    await sink.until(lambda: sorted(h.event_id for h in sink.ok("billing")) == sorted(ids))
    code, _, err = d.cli("redrive", "billing", "--filter", "id = ")
    assert code == 1
    assert "filter" in err
    status, problem = await d.call("POST", "/subscriptions/billing/redrive", json={"since": "x"})
    openapi.check("redrive", status, problem, "application/problem+json")
    assert status == 400


async def test_replay_delivers_the_window_again_with_new_webhook_ids(
    deploy: Any, sink: Sink
) -> None:
    d = await deploy("billing", "warehouse")
    ids = await d.publish(3)
    await sink.until(lambda: len(sink.ok("billing")) == 3)
    first = {h.webhook_id for h in sink.ok("billing")}
    assert d.json("replay", "billing", "--since", "1h", "--dry-run") == {
        "matched": 3, "queued": 0, "dry_run": True
    }  # fmt: skip
    code, out, _ = d.cli("replay", "billing", "--since", "1h", "--filter", f"id = '{ids[2]}'")
    assert code == 0
    assert "1 matched, 1 queued" in out
    status, body = await d.call("POST", "/subscriptions/billing/replay",
                                json={"since": "1h", "filter": f"id <> '{ids[2]}'"})  # fmt: skip
    openapi.check("replay", status, body)
    assert body["queued"] == 2
    await sink.until(lambda: len(sink.ok("billing")) == 6)
    again = [h for h in sink.ok("billing")][3:]
    assert sorted(h.event_id for h in again) == sorted(ids)
    assert not {h.webhook_id for h in again} & first
    assert len(sink.ok("warehouse")) == 3
    code, _, err = d.cli("replay", "billing", "--since", "not-a-time")
    assert code == 1
    assert "since" in err


async def test_reload_valid_invalid_and_a_removed_subscription(deploy: Any, sink: Sink) -> None:
    d = await deploy("billing")
    path = d.config.parent / "subscriptions" / "test.yaml"
    good = path.read_text()
    path.write_text(good.replace("name: billing", "name: billing\n  colour: red"))
    code, out, err = d.cli("reload")
    assert code == 1
    assert "test.yaml:" in out
    assert "colour" in out
    assert "refused" in err
    status = d.json("status")
    assert status["config"]["generation"] == 1
    assert "colour" in status["config"]["last_error"]
    status_code, refused = await d.call("POST", "/reload")
    openapi.check("reload", status_code, refused)
    assert status_code == 422
    assert refused["ok"] is False

    sink.status["billing"] = 503  # pending: retried, kept
    d.write_subscriptions(subs(sink, "audit"))
    code, out, _ = d.cli("reload")
    assert code == 0
    assert "generation 2" in out
    [kept] = await d.publish(1)
    await sink.until(lambda: any(h.event_id == kept for h in sink.ok("audit")))
    status = d.json("status")
    assert status["config"]["generation"] == 2
    assert status["config"]["last_error"] is None
    assert [s["name"] for s in status["subscriptions"]] == ["audit"]  # billing had no backlog

    d.write_subscriptions(subs(sink, "audit", "billing", attempts=1000))  # retried, not dead
    assert d.cli("reload")[0] == 0
    [held] = await d.publish(1)
    await sink.until(lambda: any(h.event_id == held for h in sink.hits if h.path == "billing"))
    d.write_subscriptions(subs(sink, "audit"))
    assert d.cli("reload")[0] == 0
    removed = next(s for s in d.json("status")["subscriptions"] if s["name"] == "billing")
    assert (removed["state"], removed["backlog"]) == ("removed", 1)
    sink.status["billing"] = 204
    d.write_subscriptions(subs(sink, "audit", "billing", attempts=1000))
    d.process.kill(signal.SIGHUP)  # the same reload
    await sink.until(lambda: any(h.event_id == held for h in sink.ok("billing")))
    assert d.json("status")["config"]["generation"] == 5
    assert d.process.proc is not None
    assert d.process.proc.poll() is None


async def test_sighup_under_load_loses_and_duplicates_nothing(deploy: Any, sink: Sink) -> None:
    d = await deploy("billing")
    published: list[str] = []

    async def load() -> None:
        for _ in range(20):
            published.extend(await d.publish(10))

    task = asyncio.create_task(load())
    while not task.done():
        d.process.kill(signal.SIGHUP)
        await asyncio.sleep(0.05)
    await task
    await sink.until(lambda: len(sink.ok("billing")) >= len(published))
    await asyncio.sleep(0.5)
    delivered = [h.event_id for h in sink.ok("billing")]
    assert sorted(delivered) == sorted(published)
    assert d.json("status")["config"]["generation"] > 1


async def test_metrics_names_present_and_moving(deploy: Any, sink: Sink) -> None:
    sink.status["billing"] = 503
    d = await deploy("billing", attempts=1000)  # still pending, retried, while metrics are read
    await d.publish(2)
    await sink.until(lambda: len(sink.hits) >= 2)
    async with aiohttp.ClientSession() as http, http.get(f"{d.process.url}/metrics") as resp:
        text = await resp.text()
    for name in (
        'gateway_backlog{subscription="billing"} 2.0',
        'gateway_breaker_open{subscription="billing"} 0.0',
        'gateway_oldest_pending_seconds{subscription="billing"}',
        'gateway_attempt_duration_seconds_count{subscription="billing"}',
        "gateway_config_generation 1.0",
        "gateway_events_accepted_total 2.0",
    ):
        assert name in text, name
    sink.status["billing"] = 204  # the first two may be dead-lettered already: publish two more
    await d.publish(2)
    await sink.until(lambda: len(sink.ok("billing")) >= 2)
    for _ in range(100):
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{d.process.url}/metrics") as resp,
        ):
            text = await resp.text()
        latency = re.search(
            r'gateway_delivery_latency_seconds_count\{subscription="billing"\} (\S+)', text
        )
        if 'gateway_backlog{subscription="billing"} 0.0' in text and latency:
            break
        await asyncio.sleep(0.1)
    assert 'gateway_backlog{subscription="billing"} 0.0' in text
    assert latency is not None
    assert float(latency.group(1)) >= 2


async def test_cannot_reach_exits_2_with_the_address(tmp_path: Path) -> None:
    port = free_port()
    done = run_cli("status", "--url", f"http://127.0.0.1:{port}")
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in done.stderr
    config = write_deployment(tmp_path, [], {})
    done = run_cli("status", "-c", str(config))
    assert done.returncode == 2
    assert "admin:" in done.stderr


async def test_two_postgres_replicas_answer_for_the_deployment(deploy: Any, sink: Sink) -> None:
    """A pause made on one replica holds on the other; counts are the whole deployment's; a
    redrive from one replica delivers each dead letter once."""
    async with postgres_schema(pool_max=4) as url:
        a = await deploy("billing", "warehouse", store=url)
        b = await deploy("billing", "warehouse", store=url)
        assert a.cli("pause", "billing")[0] == 0
        await asyncio.sleep(0.5)  # past both replicas' poll_interval: b has read the pause
        held = await b.publish(2) + await a.publish(1)
        await sink.until(lambda: {h.event_id for h in sink.ok("warehouse")} >= set(held))
        for replica in (a, b):
            status = replica.json("status")
            billing = next(s for s in status["subscriptions"] if s["name"] == "billing")
            assert (billing["state"], billing["backlog"]) == ("paused", 3)
        assert not [h for h in sink.hits if h.path == "billing"]
        assert b.cli("resume", "billing")[0] == 0
        await sink.until(lambda: {h.event_id for h in sink.ok("billing")} == set(held))

        sink.status["billing"] = 400
        dead = await a.publish(2)
        await sink.until(lambda: len([h for h in sink.hits if h.status == 400]) == 2)
        await asyncio.sleep(0.3)
        listed = b.json("deadletters", "billing")
        assert sorted(d["id"] for d in listed["dead_letters"]) == sorted(dead)
        sink.status["billing"] = 204
        assert b.json("redrive", "billing") == {"matched": 2, "queued": 2, "dry_run": False}
        await sink.until(lambda: {h.event_id for h in sink.ok("billing")} >= set(dead))
        await asyncio.sleep(0.5)
        redelivered = [h.event_id for h in sink.ok("billing") if h.event_id in dead]
        assert sorted(redelivered) == sorted(dead)  # once each, by one replica or the other

        # Each replica's config generation is visible from any replica: drift shows.
        replicas = a.json("status")["config"]["replicas"]
        assert [r["generation"] for r in replicas] == [1, 1]
        assert len({r["replica"] for r in replicas}) == 2
        assert b.cli("reload")[0] == 0
        generations = sorted(r["generation"] for r in a.json("status")["config"]["replicas"])
        assert generations == [1, 2]
