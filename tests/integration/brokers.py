"""The real brokers the broker-sink tests publish to, and consumers with each one's own client."""

from __future__ import annotations

import socket
import uuid

import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

NATS = ("127.0.0.1", 4222)
AMQP = ("127.0.0.1", 5672)
MQTT = ("127.0.0.1", 1883)


def up(address: tuple[str, int]) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(address) == 0


def needs(address: tuple[str, int], name: str) -> pytest.MarkDecorator:
    """Skip when the broker is not running here (`.ci/run` starts it where it is installed)."""
    return pytest.mark.skipif(not up(address), reason=f"{name} is not running on {address}")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def sent(event: CloudEvent) -> dict[str, str]:
    """The event's attributes as canonical strings, `time` as the producer's SDK wrote it."""
    found = {name: str(value) for name, value in event.get_attributes().items()}
    found["time"] = to_binary_event(event).headers["ce-time"]
    return found
