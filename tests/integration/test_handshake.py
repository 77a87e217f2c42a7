"""The validation handshake (CONTRACT 5, `handshake: true`; CE webhook spec 4) with the real app
and a real subscriber that answers OPTIONS on command: consent delivers with the origin on
every request, a refusal holds events (kept) and says why until the sink consents,
WebHook-Allowed-Rate bounds deliveries, a sink change asks again, a restart or another replica
does not, and the real `gateway serve` process shows it in `gateway status`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.config.loader import load
from tests.integration import openapi
from tests.integration.conftest import FAST_RETRY, Running, Start, write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port, run_cli
from tests.integration.subscriber import Subscriber
from tests.unit.test_store_contract import postgres_schema

ORIGIN = "gw.test"
GATEWAY = {"origin": ORIGIN}
STAR = {"WebHook-Allowed-Origin": "*"}


def sub(name: str, sink: str | None = None, **delivery: object) -> dict[str, object]:
    return {
        "name": name,
        "sink": sink or f"{{sink}}/{name}",
        "delivery": {"timeout": "1s", "retry": dict(FAST_RETRY), "handshake": True, **delivery},
    }


async def post(gw: Running, count: int) -> list[str]:
    ids = [f"evt-{time.monotonic_ns()}-{i}" for i in range(count)]
    for event_id in ids:
        assert (await gw.post(**structured(order(event_id)))).status == 202
    return ids


async def delivered(gw: Running, path: str, ids: list[str], within: float = 10) -> None:
    await gw.subscriber.until(
        lambda: {r.headers.get("ce-id") for r in gw.subscriber.at(path)} >= set(ids),
        within, f"{len(ids)} events at {path}",
    )  # fmt: skip


async def settled(gw: Running) -> None:
    """Outcomes are recorded just after the subscriber answered: wait for the backlog to end."""
    for _ in range(200):
        if await gw.gateway.store.pending() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries still pending")


async def test_consent_with_star_and_with_the_exact_origin(start: Start) -> None:
    plain = {"name": "plain", "sink": "{sink}/plain"}
    gw = await start([sub("star"), sub("exact"), plain], gateway=GATEWAY)
    gw.subscriber.answer_options("/star", STAR)
    gw.subscriber.answer_options("/exact", {"WebHook-Allowed-Origin": ORIGIN})
    ids = await post(gw, 3)
    for path in ("/star", "/exact", "/plain"):
        await delivered(gw, path, ids)
    for path in ("/star", "/exact"):
        [asked] = gw.subscriber.options_at(path)
        assert asked.headers["WebHook-Request-Origin"] == ORIGIN
        assert "WebHook-Request-Rate" not in asked.headers  # no rate_limit: none requested
        # CE webhook 4: after permission every delivery carries the same origin.
        assert {r.headers.get("WebHook-Request-Origin") for r in gw.subscriber.at(path)} == {
            ORIGIN
        }
    assert gw.subscriber.options_at("/plain") == []
    assert all("WebHook-Request-Origin" not in r.headers for r in gw.subscriber.at("/plain"))
    status = gw.gateway.dispatcher.handshake("star")
    assert status == {"state": "accepted", "origin": ORIGIN, "allowed_rate": "*", "error": None}
    assert gw.gateway.dispatcher.handshake("plain") is None


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (405, "HTTP 405"),
        ({}, "without WebHook-Allowed-Origin"),  # 200 alone is not consent
        ({"WebHook-Allowed-Origin": "someone.else"}, "'someone.else' is not 'gw.test'"),
    ],
)
async def test_a_refusal_holds_events_until_the_sink_consents(
    start: Start, refusal: Any, reason: str
) -> None:
    gw = await start([sub("held")], gateway=GATEWAY)
    gw.subscriber.answer_options("/held", refusal)
    ids = await post(gw, 3)
    # Asked, refused, asked again after the backoff: the events stay pending meanwhile.
    await gw.subscriber.until(lambda: len(gw.subscriber.options_at("/held")) >= 2, 10, "2 asks")
    assert gw.subscriber.at("/held") == []
    assert await gw.gateway.store.pending() == 3
    assert await gw.gateway.store.dead_letters(None, 10) == []
    status = gw.gateway.dispatcher.handshake("held")
    assert status is not None
    assert status["state"] == "refused"
    assert reason in status["error"]

    gw.subscriber.answer_options("/held", STAR)
    await delivered(gw, "/held", ids)
    await settled(gw)
    assert gw.gateway.dispatcher.handshake("held")["state"] == "accepted"  # type: ignore[index]


async def test_the_egress_guard_applies_to_the_handshake(start: Start) -> None:
    gw = await start([sub("guarded")], gateway={**GATEWAY, "egress": {"deny": ["127.0.0.0/8"]}})
    gw.subscriber.answer_options("/guarded", STAR)
    await post(gw, 1)
    dispatcher = gw.gateway.dispatcher
    for _ in range(100):
        if (dispatcher.handshake("guarded") or {}).get("state") == "refused":
            break
        await asyncio.sleep(0.05)
    status = dispatcher.handshake("guarded")
    assert status is not None
    assert status["state"] == "refused", status
    assert "127.0.0.1" in status["error"], status
    assert gw.subscriber.options == []  # never sent
    assert await gw.gateway.store.pending() == 1


async def test_the_allowed_rate_bounds_deliveries(start: Start) -> None:
    # Our own limit asks for 120/m; the sink allows 60/m (1/s): the lower one wins.
    gw = await start([sub("slow", rate_limit="120/m")], gateway=GATEWAY)
    gw.subscriber.answer_options("/slow", {**STAR, "WebHook-Allowed-Rate": "60"})
    await post(gw, 10)
    await gw.subscriber.wait_for("/slow", 1)
    [asked] = gw.subscriber.options_at("/slow")
    assert asked.headers["WebHook-Request-Rate"] == "120"
    await asyncio.sleep(1.5)
    # At 1/s with a bucket of one: about 2 in this window; 120/m or no limit would be 4 or 10.
    count = len(gw.subscriber.at("/slow"))
    assert 1 <= count <= 3, count
    assert gw.gateway.dispatcher.handshake("slow")["allowed_rate"] == "60/m"  # type: ignore[index]


async def test_a_sink_change_asks_again(start: Start, tmp_path: Path) -> None:
    gw = await start([sub("moving", sink="{sink}/old")], gateway=GATEWAY)
    gw.subscriber.answer_options("/old", STAR)
    first = await post(gw, 1)
    await delivered(gw, "/old", first)
    # A reload with another sink: the new one must consent first.
    changed = [sub("moving", sink=f"{gw.sink}/new")]
    config = load(write_deployment(tmp_path, changed, GATEWAY), env={})
    await gw.gateway.dispatcher.reconfigure(config.subscriptions)
    later = await post(gw, 2)
    await gw.subscriber.until(lambda: len(gw.subscriber.options_at("/new")) >= 1, 10, "an ask")
    assert gw.subscriber.at("/new") == []  # 405 by default: held
    gw.subscriber.answer_options("/new", STAR)
    await delivered(gw, "/new", later)
    assert len(gw.subscriber.options_at("/old")) == 1


async def test_a_restart_does_not_repeat_a_consented_handshake(start: Start) -> None:
    spec = [sub("kept")]
    gw = await start(spec, gateway=GATEWAY)
    gw.subscriber.answer_options("/kept", STAR)
    await delivered(gw, "/kept", await post(gw, 1))
    await gw.client.close()

    again = await start(spec, gateway=GATEWAY)
    gw.subscriber.answer_options("/kept", 405)  # would hold everything if asked again
    await delivered(again, "/kept", await post(again, 2))
    assert len(gw.subscriber.options_at("/kept")) == 1


async def test_replicas_share_the_handshake_on_postgresql(start: Start) -> None:
    async with postgres_schema(pool_max=4) as url:
        spec, settings = [sub("shared")], {**GATEWAY, "store": url}
        one = await start(spec, gateway=settings)
        one.subscriber.answer_options("/shared", STAR)
        await delivered(one, "/shared", await post(one, 1))
        two = await start(spec, gateway=settings)
        one.subscriber.answer_options("/shared", 405)  # the second replica must not ask
        await delivered(two, "/shared", await post(two, 4))
        assert len(one.subscriber.options_at("/shared")) == 1
        for gw in (one, two):
            await gw.client.close()


async def test_the_real_process_shows_a_refusal_in_status(
    tmp_path: Path, subscriber: tuple[Subscriber, str]
) -> None:
    receiver, base = subscriber
    port, admin = free_port(), free_port()
    settings = {
        **GATEWAY,
        "server": {"port": port},
        "admin": {"host": "127.0.0.1", "port": admin, "token": "t0ken"},
    }
    config = write_deployment(tmp_path, [sub("proc", sink=f"{base}/proc")], settings)
    process = Process(config, port, tmp_path / "gateway.log")
    await process.start()
    try:
        async with aiohttp.ClientSession() as http:
            event = order("proc-1")
            async with http.post(f"{process.url}/events", **structured(event)) as resp:
                assert resp.status == 202
        await receiver.until(lambda: len(receiver.options_at("/proc")) >= 1, 10, "an ask")

        def status() -> dict[str, Any]:
            done = run_cli("status", "--json", "-c", str(config))
            assert done.returncode == 0, done.stderr
            document: dict[str, Any] = orjson.loads(done.stdout)
            openapi.check("status", 200, document)
            [found] = document["subscriptions"]
            return found

        found = await asyncio.to_thread(status)
        assert found["state"] == "active"  # the contract's states; the reason is shown
        assert found["handshake"]["state"] == "refused"
        assert "HTTP 405" in found["last_error"]
        assert found["backlog"] == 1
        assert "validation handshake refused" in (tmp_path / "gateway.log").read_text()

        receiver.answer_options("/proc", STAR)
        await receiver.wait_for_id("/proc", "proc-1", timeout=15)
        found = await asyncio.to_thread(status)
        assert found["handshake"]["state"] == "accepted"
        assert found["backlog"] == 0
    finally:
        process.stop()
