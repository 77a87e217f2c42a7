"""Broker sinks: publishers by URL scheme, pooled per server, loaded only when used.

`Brokers.publish` is the sender's entry for `nats://`, `amqp://` and `mqtt://` sinks: it picks
(or lazily creates) the publisher for the sink's server and publishes one rendered event. Each
scheme's module imports its client library; a scheme nobody uses never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

from gateway import sinkurl
from gateway.config.model import Subscription
from gateway.delivery import retry
from gateway.delivery.brokers.base import Message, Publisher, message
from gateway.store.base import Leased

__all__ = ["Brokers", "Message", "Publisher", "message"]

_MODULES = {"nats": "NatsPublisher", "amqp": "AmqpPublisher", "mqtt": "MqttPublisher"}


class Brokers:
    """Publishers by server: one connection per broker server and credentials."""

    def __init__(self) -> None:
        self._publishers: dict[str, Publisher[Any]] = {}

    async def publish(
        self, url: str, sub: Subscription, leased: Leased, msg_id: str
    ) -> retry.Result:
        """Publish `leased` to the broker sink `url` once; never raises for broker problems."""
        try:
            target = sinkurl.broker(url)
        except sinkurl.InvalidSink as exc:
            return retry.Result(None, f"invalid sink url: {exc}")
        publisher = self._publishers.get(target.server)
        if publisher is None:
            extra = sinkurl.missing_extra(target.scheme)
            if extra is not None:
                return retry.Result(None, f"{target.scheme}:// needs the '{extra}' extra")
            publisher = _publisher(target)
            await publisher.start()
            self._publishers[target.server] = publisher
        try:
            msg = message(sub, leased, msg_id)
        except (ValueError, TypeError) as exc:
            return retry.Result(None, f"could not build the message: {type(exc).__name__}")
        return await publisher.publish(target, msg, sub.delivery.timeout)

    async def close(self) -> None:
        publishers, self._publishers = list(self._publishers.values()), {}
        for publisher in publishers:
            await publisher.close()


def _publisher(target: sinkurl.Broker) -> Publisher[Any]:
    module = importlib.import_module(f"gateway.delivery.brokers.{target.scheme}")
    cls: type[Publisher[Any]] = getattr(module, _MODULES[target.scheme])
    return cls(target)
