"""The real brokers the broker-sink tests publish to, and consumers with each one's own client."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from gateway.store.base import Store
from tests.integration.conftest import FAST_RETRY

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


class Proxy:
    """A TCP forwarder to a broker on a port of its own: started late, it is a broker that was
    down and came up."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst), name="proxy-pipe")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()


def through_outage(spec: dict[str, object]) -> None:
    """Let a subscription retry through a broker outage: retries that do not run out, and a
    breaker (it opens while the broker is out) whose short cooldown probes soon."""
    delivery = dict(spec["delivery"])  # type: ignore[call-overload]
    delivery["retry"] = {**FAST_RETRY, "max_attempts": 1000}
    delivery["circuit_breaker"] = {"failures": 10, "cooldown": "300ms"}
    spec["delivery"] = delivery


async def failing(store: Store, name: str, attempts: int) -> str:
    """Wait (up to 5 s) until `attempts` attempts of `name` failed; the last error."""
    for _ in range(100):
        counts = (await store.counts()).get(name)
        if counts is not None and counts.failed >= attempts:
            break
        await asyncio.sleep(0.05)
    assert counts is not None
    assert counts.last_error is not None
    return counts.last_error
