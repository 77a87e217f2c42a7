"""AMQP 0-9-1 sinks (RabbitMQ) after the CloudEvents AMQP protocol binding 1.0.

The binding is written for AMQP 1.0; over 0-9-1 its application properties travel in the
message's `headers` table with the `cloudEvents_` prefix (AMQP binding 3.1.4 prefers `_`) and
`datacontenttype` in the `content_type` property. Publisher confirms make a delivery count only
when the broker has taken the message; `mandatory` makes an unroutable message come back,
which is a failed attempt.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection, DeliveryMode
from aio_pika.exceptions import DeliveryError

from gateway import sinkurl
from gateway.delivery import retry
from gateway.delivery.brokers.base import ACKED, Message, Publisher

PREFIX = "cloudEvents_"  # AMQP binding 3.1.4


class Channel:
    """A connection and its one confirming channel."""

    def __init__(self, conn: AbstractRobustConnection, channel: AbstractChannel) -> None:
        self.conn = conn
        self.channel = channel


def amqp_message(msg: Message) -> aio_pika.Message:
    """The AMQP message (binding 3.1 binary: prefixed headers; 3.2 structured: the format)."""
    return aio_pika.Message(
        msg.body,
        headers={PREFIX + name: value for name, value in msg.attributes},
        content_type=msg.content_type,
        message_id=msg.msg_id,
        delivery_mode=DeliveryMode.PERSISTENT,
    )


class AmqpPublisher(Publisher[Channel]):
    async def _connect(self) -> Channel:
        broker = self.broker
        conn = await aio_pika.connect_robust(
            host=broker.host,
            port=broker.port,
            login=broker.user or "guest",
            password=broker.password or "guest",
            virtualhost=broker.vhost,
            timeout=5,
        )
        try:
            channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        except BaseException:
            await conn.close()
            raise
        return Channel(conn, channel)

    async def _disconnect(self, conn: Channel) -> None:
        await conn.conn.close()

    async def _publish(
        self, conn: Channel, target: sinkurl.Broker, msg: Message
    ) -> retry.Result:
        exchange = await conn.channel.get_exchange(target.target, ensure=False)
        try:
            confirm = await exchange.publish(
                amqp_message(msg), routing_key=target.routing_key, mandatory=True
            )
        except DeliveryError as exc:
            # AMQP 0-9-1 basic.return: the exchange routed the message to no queue.
            text = getattr(exc.frame, "reply_text", None) or "returned"
            where = f"exchange '{target.target}', routing key '{target.routing_key}'"
            return retry.Result(None, f"unroutable: {text} ({where})")
        return ACKED if _confirmed(confirm) else retry.Result(None, "not confirmed (nack)")


def _confirmed(confirm: object) -> bool:
    # pamqp: Basic.Ack for a confirmed publish, Basic.Nack when the broker refused it.
    return type(confirm).__name__ == "Ack"
