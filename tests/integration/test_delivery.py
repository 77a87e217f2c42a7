"""Delivery to real subscribers that fail on command: retries, dead letter, pause, isolation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from standardwebhooks import Webhook

from gateway.store.base import Kind
from tests.integration.conftest import FAST_RETRY, Start
from tests.integration.events import order, received_event, structured
from tests.integration.subscriber import Subscriber

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def sub(name: str, **delivery: object) -> dict[str, object]:
    return {
        "name": name,
        "sink": f"{{sink}}/{name}",
        "delivery": {"timeout": "1s", "retry": dict(FAST_RETRY), **delivery},
    }


async def test_500_then_200_is_retried_with_a_stable_signed_webhook_id(start: Start) -> None:
    spec = {**sub("billing"), "signing": {"secret": SECRET}, "headers": {"X-Team": "billing"},
            "auth": {"bearer": "tok-123"}}
    gw = await start([spec])
    gw.subscriber.plan("/billing", 500, 200)
    event = order()
    assert (await gw.post(**structured(event))).status == 202
    first, second = await gw.subscriber.wait_for("/billing", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    for got in (first, second):
        # The independent oracle: the Standard Webhooks reference library.
        Webhook(SECRET).verify(got.body, got.headers)
        assert got.headers["X-Team"] == "billing"
        assert got.headers["Authorization"] == "Bearer tok-123"
    await asyncio.sleep(0.3)
    assert len(gw.subscriber.at("/billing")) == 2
    assert await gw.gateway.store.pending() == 0


async def test_webhook_ids_differ_across_databases(start: Start) -> None:
    """Row ids repeat in every new database; a subscriber deduplicating on webhook-id (as
    Standard Webhooks tells it to) must still see two different ids for two events."""
    for store in ("sqlite:///data/a.db", "sqlite:///data/b.db"):
        gw = await start([sub("billing")], gateway={"store": store})
        assert (await gw.post(**structured(order()))).status == 202
    first, second = await gw.subscriber.wait_for("/billing", 2)
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert all(h.headers["webhook-id"].startswith("msg_") for h in (first, second))


async def test_429_retry_after_is_honoured(start: Start) -> None:
    spec = sub("limited", retry={**FAST_RETRY, "max_delay": "5s"})
    gw = await start([spec])
    gw.subscriber.plan("/limited", ("retry-after", 429, "1"), 200)
    await gw.post(**structured(order()))
    first, second = await gw.subscriber.wait_for("/limited", 2, timeout=10)
    assert second.at - first.at >= 0.9


async def test_timeouts_and_resets_are_retried(start: Start) -> None:
    gw = await start([sub("hangs", timeout="200ms"), sub("resets")])
    gw.subscriber.plan("/hangs", "hang", 200)
    gw.subscriber.plan("/resets", "reset", 200)
    await gw.post(**structured(order()))
    await gw.subscriber.wait_for("/hangs", 2)
    await gw.subscriber.wait_for("/resets", 2)
    await asyncio.sleep(0.3)
    assert len(gw.subscriber.at("/hangs")) == 2
    assert len(gw.subscriber.at("/resets")) == 2


async def test_redirects_are_not_followed_but_retried(start: Start) -> None:
    gw = await start([sub("moved")])
    gw.subscriber.plan("/moved", ("redirect", "/elsewhere"), 200)
    await gw.post(**structured(order()))
    await gw.subscriber.wait_for("/moved", 2)
    assert gw.subscriber.at("/elsewhere") == []


async def test_400_goes_to_the_dead_letter_sink_at_once(start: Start) -> None:
    spec = sub("strict", dead_letter="{sink}/dead")
    gw = await start([spec])
    gw.subscriber.plan("/strict", 400)
    event = order()
    await gw.post(**structured(event))
    [dead] = await gw.subscriber.wait_for("/dead", 1)
    assert len(gw.subscriber.at("/strict")) == 1
    assert dead.headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    notice = received_event(dead)
    assert notice.get_id() == event.get_id()
    assert notice.get_data() == event.get_data()
    body = json.loads(dead.body)
    assert body["deadletterreason"] == "rejected"
    assert body["deadletterstatus"] == 400
    assert body["deadletterattempts"] == 1
    assert body["deadlettersink"].endswith("/strict")
    [listed] = await gw.gateway.store.dead_letters("strict", 10)
    assert listed.event.id == event.get_id()


async def test_exhausted_retries_are_dead_lettered_and_kept(start: Start) -> None:
    gw = await start([sub("down", dead_letter="{sink}/dead", retry={**FAST_RETRY,
                                                                     "max_attempts": 3})])
    gw.subscriber.plan("/down", 503)
    await gw.post(**structured(order()))
    [dead] = await gw.subscriber.wait_for("/dead", 1)
    body = json.loads(dead.body)
    assert body["deadletterreason"] == "exhausted"
    assert body["deadletterattempts"] == 3
    assert body["deadletterstatus"] == 503
    assert len(gw.subscriber.at("/down")) == 3
    for _ in range(50):  # the dead-letter notice's outcome commits just after it arrives
        if await gw.gateway.store.pending() == 0:
            break
        await asyncio.sleep(0.05)
    assert await gw.gateway.store.pending() == 0


async def test_410_dead_letters_and_pauses_the_subscription(start: Start) -> None:
    gw = await start([sub("gone")])
    gw.subscriber.plan("/gone", 410, 200)
    await gw.post(**structured(order()))
    await gw.subscriber.wait_for("/gone", 1)
    await asyncio.sleep(0.2)
    later = order()
    assert (await gw.post(**structured(later))).status == 202
    await asyncio.sleep(0.5)
    assert len(gw.subscriber.at("/gone")) == 1  # the later event waits, it is not dropped
    assert await gw.gateway.store.pending() == 1
    assert "gone" in await gw.gateway.store.paused()
    [dead] = await gw.gateway.store.dead_letters("gone", 10)
    assert dead.reason == "gone"
    assert dead.status == 410


async def test_a_hung_subscriber_does_not_slow_the_others(start: Start) -> None:
    gw = await start([sub("stuck", timeout="5s", max_in_flight=2), sub("fast")])
    gw.subscriber.plan("/stuck", "hang")
    for _ in range(20):
        assert (await gw.post(**structured(order()))).status == 202
    await gw.subscriber.wait_for("/fast", 20, timeout=5)
    assert len(gw.subscriber.at("/stuck")) == 2  # bounded by its max_in_flight


async def test_structured_mode_and_no_data_events(start: Start) -> None:
    gw = await start([sub("s", mode="structured"), sub("b")])
    resp = await gw.post(
        headers={"ce-specversion": "1.0", "ce-id": "nodata", "ce-source": "/s",
                 "ce-type": "com.example.ping"},
        skip_auto_headers=["Content-Type"],
    )
    assert resp.status == 202
    [s] = await gw.subscriber.wait_for("/s", 1)
    [b] = await gw.subscriber.wait_for("/b", 1)
    assert json.loads(s.body) == {"specversion": "1.0", "id": "nodata", "source": "/s",
                                  "type": "com.example.ping"}
    assert b.body == b""
    assert "Content-Type" not in b.headers


async def test_dead_letter_rows_are_delivered_even_while_paused(start: Start) -> None:
    gw = await start([sub("gone2", dead_letter="{sink}/dead2")])
    gw.subscriber.plan("/gone2", 410)
    await gw.post(**structured(order()))
    [dead] = await gw.subscriber.wait_for("/dead2", 1)
    assert json.loads(dead.body)["deadletterreason"] == "gone"
    rows = await gw.gateway.store.lease("gone2", Kind.DEAD_LETTER, 10, 1e12, 1)
    assert rows == []


async def test_slow_subscribers_cannot_take_a_healthy_ones_slots(start: Start) -> None:
    """Four sinks that hang hold every attempt for the whole timeout; with first come, first
    served they would fill `dispatch.max_in_flight` and the healthy subscription would wait for
    their timeouts. Its share is kept for it."""
    slow = [sub(f"slow{i}", timeout="30s", max_in_flight=16) for i in range(4)]
    gw = await start([*slow, sub("healthy")], gateway={"dispatch": {"max_in_flight": 32,
                                                                     "poll_interval": "100ms"}})
    for i in range(4):
        gw.subscriber.plan(f"/slow{i}", "hang")
    for _ in range(40):
        assert (await gw.post(**structured(order()))).status == 202
    await gw.subscriber.wait_for("/healthy", 40, timeout=10)
    assert sum(len(gw.subscriber.at(f"/slow{i}")) for i in range(4)) <= 32


async def test_egress_refuses_at_connect_time_and_says_why(
    start: Start, subscriber: tuple[Subscriber, str], tmp_path: Path
) -> None:
    """The subscriber listens on 127.0.0.1: refused by address, and by name (`localhost` is
    resolved and checked at connect time); then `allow`, which wins over `deny`, lets both in."""
    _, base = subscriber
    named = base.replace("127.0.0.1", "localhost")
    subs = [sub("literal"), {**sub("named"), "sink": f"{named}/named"}]
    deny = ["127.0.0.0/8", "::1/128"]
    gw = await start(subs, gateway={"egress": {"deny": deny}, "store": "sqlite:///data/deny.db"})
    assert (await gw.post(**structured(order()))).status == 202

    def errors() -> set[str]:
        path = tmp_path / "config" / "data" / "deny.db"
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("SELECT d.subscription, a.error FROM attempts AS a JOIN "
                                "deliveries AS d ON d.id = a.delivery_id").fetchall()
        return {f"{name}: {error}" for name, error in rows}

    for _ in range(100):
        found = errors()
        if any(e.startswith("literal:") for e in found) and any(
            e.startswith("named:") for e in found
        ):
            break
        await asyncio.sleep(0.05)
    assert "literal: egress refused: 127.0.0.1 is in egress.deny (127.0.0.0/8)" in found
    assert any(e.startswith("named: egress refused: localhost resolves to ") for e in found)
    assert gw.subscriber.at("/literal") == gw.subscriber.at("/named") == []

    allowed = {"allow": ["127.0.0.1/32", "::1/128"], "deny": deny}
    gw = await start(subs, gateway={"egress": allowed, "store": "sqlite:///data/allow.db"})
    assert (await gw.post(**structured(order()))).status == 202
    await gw.subscriber.wait_for("/literal", 1)
    await gw.subscriber.wait_for("/named", 1)
