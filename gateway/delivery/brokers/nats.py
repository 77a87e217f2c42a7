"""NATS JetStream sinks (CloudEvents NATS protocol binding 1.0, with NATS headers).

A delivery counts only when the stream acknowledges the publish; `Nats-Msg-Id` carries the
webhook-id so JetStream drops a retried publish it already stored (its duplicate window).
"""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js.errors import NoStreamResponseError

from gateway import sinkurl
from gateway.delivery import retry
from gateway.delivery.brokers.base import ACKED, Message, Publisher
from gateway.percent import encode

log = logging.getLogger("gateway.delivery.nats")


def headers(msg: Message) -> dict[str, str]:
    """The NATS headers of a message (NATS binding 3.1 binary, 3.2 structured)."""
    found: dict[str, str] = {"Nats-Msg-Id": msg.msg_id}
    if msg.structured:
        # NATS binding 3.2.1: Content-Type names the event format.
        if msg.content_type is not None:
            found["Content-Type"] = msg.content_type
        return found
    # NATS binding 3.1.3: every attribute as ce-<name>, datacontenttype included, values
    # percent-encoded as in the HTTP binding.
    if msg.content_type is not None:
        found["ce-datacontenttype"] = encode(msg.content_type)
    for name, value in msg.attributes:
        found["ce-" + name] = encode(value)
    return found


class NatsPublisher(Publisher[Client]):
    async def _connect(self) -> Client:
        broker = self.broker

        async def on_error(exc: Exception) -> None:
            log.warning("nats %s:%d: %s", broker.host, broker.port, type(exc).__name__)

        return await nats.connect(
            servers=[f"nats://{broker.host}:{broker.port}"],
            user=broker.user,
            password=broker.password,
            connect_timeout=5,
            max_reconnect_attempts=-1,  # the client reconnects itself once connected
            error_cb=on_error,
        )

    async def _disconnect(self, conn: Client) -> None:
        await conn.close()

    async def _publish(self, conn: Client, target: sinkurl.Broker, msg: Message) -> retry.Result:
        try:
            await conn.jetstream().publish(target.target, msg.body, headers=headers(msg))
        except NoStreamResponseError:
            return retry.Result(None, f"no JetStream stream for subject '{target.target}'")
        return ACKED

    def _broken(self, exc: BaseException) -> bool:
        # The client reconnects by itself; only a closed client is opened again.
        return isinstance(self._conn, Client) and self._conn.is_closed
