"""NATS JetStream sinks through the real app: the NATS binding's headers, acks, dedupe ids."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import unquote

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig

from tests.integration.brokers import NATS, failing, needs, sent, through_outage, unique
from tests.integration.conftest import FAST_RETRY, Start
from tests.integration.events import binary, order

pytestmark = needs(NATS, "NATS")
SERVER = f"nats://{NATS[0]}:{NATS[1]}"


@pytest.fixture
async def nc() -> AsyncIterator[Client]:
    client = await nats.connect(SERVER)
    yield client
    await client.close()


async def stream(nc: Client, subject: str) -> str:
    name = unique("S")
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[subject]))
    return name


async def fetch(nc: Client, subject: str, count: int) -> list[nats.aio.msg.Msg]:
    sub = await nc.jetstream().pull_subscribe(subject)
    got: list[nats.aio.msg.Msg] = []
    for _ in range(100):
        with contextlib.suppress(nats.errors.TimeoutError):
            got += await sub.fetch(count - len(got), timeout=0.2)
        if len(got) >= count:
            return got
    raise AssertionError(f"{len(got)} of {count} messages arrived on {subject}")


def subscription(name: str, subject: str, mode: str = "binary") -> dict[str, object]:
    return {
        "name": name,
        "sink": f"{SERVER}/{subject}",
        "delivery": {"mode": mode, "timeout": "2s", "retry": dict(FAST_RETRY)},
    }


async def test_binary_mode_puts_every_attribute_in_ce_headers(nc: Client, start: Start) -> None:
    subject = unique("orders.")
    name = await stream(nc, subject)
    gw = await start([subscription("n", subject)])
    event = order(comexampletag='a b%"ü', amount=7)
    response = await gw.post(**binary(event))
    assert response.status == 202
    [msg] = await fetch(nc, subject, 1)
    headers = msg.headers or {}
    # NATS binding 3.1.3: ce-<name> for every attribute, datacontenttype included,
    # percent-encoded as in the HTTP binding.
    attributes = {k[3:]: unquote(v) for k, v in headers.items() if k.startswith("ce-")}
    assert attributes == sent(event)
    assert headers["ce-comexampletag"] == "a%20b%25%22%C3%BC"
    assert msg.data == binary(event)["data"]
    assert headers["Nats-Msg-Id"].startswith("msg_")
    info = await nc.jetstream().stream_info(name)
    assert info.state.messages == 1


async def test_structured_mode_carries_the_json_format(nc: Client, start: Start) -> None:
    subject = unique("orders.")
    await stream(nc, subject)
    gw = await start([subscription("n", subject, "structured")])
    event = order(amount=9)
    await gw.post(**binary(event))
    [msg] = await fetch(nc, subject, 1)
    headers = msg.headers or {}
    assert headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    assert not [k for k in headers if k.startswith("ce-")]
    body = json.loads(msg.data)
    data = body.pop("data")
    assert {k: str(v) for k, v in body.items()} == sent(event)
    assert data == json.loads(binary(event)["data"])


async def test_a_missing_stream_fails_attempts_until_it_exists(
    nc: Client, start: Start
) -> None:
    subject = unique("later.")
    spec = subscription("n", subject)
    through_outage(spec)
    gw = await start([spec])
    events = [order(amount=i) for i in range(5)]
    for event in events:
        assert (await gw.post(**binary(event))).status == 202
    last_error = await failing(gw.gateway.store, "n", 5)
    assert "no JetStream stream" in last_error
    await stream(nc, subject)
    got = await fetch(nc, subject, 5)
    assert sorted(json.loads(m.data)["amount"] for m in got) == [0, 1, 2, 3, 4]
    # Nats-Msg-Id is the same on every attempt of a delivery: JetStream keeps one copy.
    assert len({(m.headers or {})["Nats-Msg-Id"] for m in got}) == 5
