"""MQTT 5 sinks through the real app: the MQTT binding's user properties and content type."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from tests.integration.brokers import MQTT, Proxy, failing, needs, sent, through_outage, unique
from tests.integration.conftest import FAST_RETRY, Start
from tests.integration.events import binary, order

pytestmark = needs(MQTT, "Mosquitto")
SERVER = f"mqtt://{MQTT[0]}:{MQTT[1]}"


@pytest.fixture
async def topic() -> AsyncIterator[tuple[str, aiomqtt.Client]]:
    name = unique("gateway/test/")
    async with aiomqtt.Client(MQTT[0], MQTT[1], protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(name, qos=1)
        yield name, client


async def first(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):
        async for msg in client.messages:
            return msg
    raise AssertionError("no message")


def subscription(topic: str, mode: str) -> dict[str, object]:
    return {
        "name": "m",
        "sink": f"{SERVER}/{topic}?qos=1",
        "delivery": {"mode": mode, "timeout": "2s", "retry": dict(FAST_RETRY)},
    }


async def test_binary_mode_puts_attributes_in_user_properties(
    topic: tuple[str, aiomqtt.Client], start: Start
) -> None:
    name, client = topic
    gw = await start([subscription(name, "binary")])
    event = order(comexampletag='a b%"ü', amount=3)
    assert (await gw.post(**binary(event))).status == 202
    msg = await first(client)
    assert msg.properties is not None
    # MQTT binding 3.1: datacontenttype as Content Type, the others as user properties with
    # their names unchanged, canonical string values.
    assert msg.properties.ContentType == "application/json"
    attributes = dict(msg.properties.UserProperty)
    assert {**attributes, "datacontenttype": msg.properties.ContentType} == sent(event)
    assert msg.payload == binary(event)["data"]
    assert msg.qos == 1


async def test_structured_mode_carries_the_json_format(
    topic: tuple[str, aiomqtt.Client], start: Start
) -> None:
    name, client = topic
    gw = await start([subscription(name, "structured")])
    event = order(amount=4)
    await gw.post(**binary(event))
    msg = await first(client)
    assert msg.properties is not None
    assert msg.properties.ContentType == "application/cloudevents+json; charset=utf-8"
    assert not getattr(msg.properties, "UserProperty", [])
    assert isinstance(msg.payload, bytes)
    body = json.loads(msg.payload)
    data = body.pop("data")
    assert {k: str(v) for k, v in body.items()} == sent(event)
    assert data == event.get_data()


async def test_a_broker_down_then_up_gets_every_event(
    topic: tuple[str, aiomqtt.Client], start: Start
) -> None:
    name, client = topic
    proxy = Proxy(MQTT)  # not listening yet: the broker is down
    spec = subscription(name, "binary")
    spec["sink"] = f"mqtt://127.0.0.1:{proxy.port}/{name}?qos=1"
    through_outage(spec)
    gw = await start([spec])
    events = [order(amount=i) for i in range(5)]
    for event in events:
        assert (await gw.post(**binary(event))).status == 202
    last_error = await failing(gw.gateway.store, "m", 5)
    assert "unreachable" in last_error or "refused" in last_error
    await proxy.start()
    try:
        got = set()
        async with asyncio.timeout(30):
            async for msg in client.messages:
                assert isinstance(msg.payload, bytes)
                got.add(json.loads(msg.payload)["amount"])
                if len(got) == 5:
                    break
        assert got == {0, 1, 2, 3, 4}
    finally:
        await gw.gateway.sender.close()  # its connection runs through the proxy
        await proxy.close()
