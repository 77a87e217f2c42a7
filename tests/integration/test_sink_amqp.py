"""AMQP sinks (RabbitMQ) through the real app: the AMQP binding's properties, confirms, returns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from cloudevents.core.bindings.amqp import AMQPMessage, from_amqp
from cloudevents.core.formats.json import JSONFormat

from tests.integration.brokers import AMQP, needs, unique
from tests.integration.conftest import FAST_RETRY, Start
from tests.integration.events import binary, order

pytestmark = needs(AMQP, "RabbitMQ")
SERVER = f"amqp://guest:guest@{AMQP[0]}:{AMQP[1]}"


@pytest.fixture
async def channel() -> AsyncIterator[AbstractChannel]:
    conn = await aio_pika.connect(SERVER)
    yield await conn.channel()
    await conn.close()


async def bound(channel: AbstractChannel, exchange: str, key: str) -> AbstractQueue:
    declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT,
                                              auto_delete=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(declared, key)
    return queue


async def take(queue: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    got: list[AbstractIncomingMessage] = []
    for _ in range(200):
        msg = await queue.get(no_ack=True, fail=False)
        if msg is not None:
            got.append(msg)
            if len(got) == count:
                return got
        else:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{len(got)} of {count} messages arrived")


def decoded(msg: AbstractIncomingMessage) -> object:
    """The event as the CloudEvents SDK's AMQP binding reads it."""
    props = {} if msg.content_type is None else {"content-type": msg.content_type}
    return from_amqp(AMQPMessage(props, dict(msg.headers), msg.body), JSONFormat())


def subscription(name: str, exchange: str, key: str, mode: str = "binary",
                 **delivery: object) -> dict[str, object]:
    return {
        "name": name,
        "sink": f"{SERVER}/{exchange}?routing_key={key}",
        "delivery": {"mode": mode, "timeout": "2s", "retry": dict(FAST_RETRY), **delivery},
    }


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_round_trip_through_the_sdk_binding(
    channel: AbstractChannel, start: Start, mode: str
) -> None:
    exchange, key = unique("ex"), unique("rk")
    queue = await bound(channel, exchange, key)
    gw = await start([subscription("a", exchange, key, mode)])
    event = order(comexampletag='a b%"ü', amount=5)
    assert (await gw.post(**binary(event))).status == 202
    [msg] = await take(queue, 1)
    got = decoded(msg)
    assert got.get_attributes() == event.get_attributes()  # type: ignore[attr-defined]
    assert got.get_data() == event.get_data()  # type: ignore[attr-defined]
    assert msg.message_id is not None
    assert msg.message_id.startswith("msg_")
    if mode == "binary":
        # AMQP binding 3.1.3/3.1.4: cloudEvents_ prefix, datacontenttype as content-type.
        assert msg.body == binary(event)["data"]
        assert msg.content_type == "application/json"
        assert "cloudEvents_datacontenttype" not in msg.headers
        assert msg.headers["cloudEvents_comexampletag"] == 'a b%"ü'
    else:
        assert msg.content_type == "application/cloudevents+json; charset=utf-8"
        assert json.loads(msg.body)["data"] == event.get_data()


async def test_unroutable_messages_are_dead_lettered_with_the_reason(
    channel: AbstractChannel, start: Start
) -> None:
    exchange = unique("ex")
    await bound(channel, exchange, "somewhere-else")
    retry = {**FAST_RETRY, "max_attempts": 2}
    gw = await start([subscription("a", exchange, "nowhere", retry=retry,
                                   dead_letter="{sink}/dead")])
    event = order()
    await gw.post(**binary(event))
    [dead] = await gw.subscriber.wait_for("/dead", 1)
    body = json.loads(dead.body)
    assert body["id"] == event.get_id()
    assert body["deadletterreason"] == "exhausted"
    assert body["deadletterattempts"] == 2
    assert "guest:guest" not in body["deadlettersink"]
    counts = (await gw.gateway.store.counts())["a"]
    assert counts.last_error is not None
    assert "unroutable: NO_ROUTE" in counts.last_error
    [listed] = await gw.gateway.store.dead_letters("a", 10)
    assert listed.event.id == event.get_id()
