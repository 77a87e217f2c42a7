"""MQTT 5 sinks after the CloudEvents MQTT protocol binding 1.0.

Binary mode (binding 3.1): the attributes as PUBLISH User Properties with their names
unchanged, datacontenttype as the Content Type. Structured mode (3.2): Content Type names the
JSON format. With qos 1 or 2 the publish counts once the broker acknowledges it.
"""

from __future__ import annotations

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import sinkurl
from gateway.delivery import retry
from gateway.delivery.brokers.base import ACKED, Message, Publisher


def properties(msg: Message) -> Properties:
    """The PUBLISH properties of a message."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if msg.content_type is not None:
        props.ContentType = msg.content_type
    if msg.attributes:
        props.UserProperty = list(msg.attributes)
    return props


class MqttPublisher(Publisher[aiomqtt.Client]):
    async def _connect(self) -> aiomqtt.Client:
        broker = self.broker
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.user,
            password=broker.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=5,
        )
        await client.__aenter__()
        return client

    async def _disconnect(self, conn: aiomqtt.Client) -> None:
        await conn.__aexit__(None, None, None)

    async def _publish(
        self, conn: aiomqtt.Client, target: sinkurl.Broker, msg: Message
    ) -> retry.Result:
        # aiomqtt waits for PUBACK (qos 1) or PUBCOMP (qos 2) before returning.
        await conn.publish(target.target, msg.body, qos=target.qos, properties=properties(msg))
        return ACKED
