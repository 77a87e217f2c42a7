"""What every broker sink shares: the message to publish, lazy connection with backoff, errors.

A publisher connects on its first publish, not at start, so a broker that is down delays only
its own subscriptions. After a failed connect the next one waits (exponential backoff with a
cap); publishes in between fail at once as attempts the retry policy reschedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway import redact, sinkurl
from gateway.config.model import Mode, Subscription
from gateway.delivery import retry
from gateway.delivery.render import render
from gateway.event import DataKind, canonical
from gateway.store.base import Kind, Leased

# A publish the broker acknowledged is recorded like an HTTP success.
ACKED = retry.Result(200)
BACKOFF_INITIAL = 0.1  # seconds before the second connect attempt
BACKOFF_MAX = 30.0
ERROR_CLIP = 200  # characters of a broker error kept in the attempt's error

Connection = TypeVar("Connection")


@dataclass(frozen=True, slots=True)
class Message:
    """One event as a broker message, before a binding names its properties."""

    # Binary mode: every attribute but datacontenttype as (name, canonical string); empty in
    # structured mode, where the body is the JSON format.
    attributes: tuple[tuple[str, str], ...]
    content_type: str | None  # datacontenttype (binary) or the format's media type
    body: bytes
    msg_id: str  # the webhook-id: the same on every retry of this delivery

    @property
    def structured(self) -> bool:
        return not self.attributes


def message(sub: Subscription, leased: Leased, msg_id: str) -> Message:
    """The message for one leased row; dead-letter notices are always structured."""
    event = leased.event
    if leased.kind is Kind.SINK and sub.delivery.mode is Mode.BINARY:
        attributes = tuple(
            (name, canonical(value))
            for name, value in event.attributes.items()
            if name != "datacontenttype"
        )
        body = b"" if event.kind is DataKind.NONE or event.data is None else event.data
        return Message(attributes, event.datacontenttype, body, msg_id)
    request = render(sub, leased)
    return Message((), request.header("Content-Type"), request.body, msg_id)


def describe(exc: BaseException, broker: sinkurl.Broker) -> str:
    """A short description of a failed publish; the broker's credentials never in it."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = " ".join(str(exc).split())
    for secret in (broker.password, broker.user):
        if secret:
            text = text.replace(secret, redact.MASK)
    name = type(exc).__name__
    shown = f"{name}: {text}" if text else name
    return redact.clip(shown, ERROR_CLIP)


class Publisher(ABC, Generic[Connection]):
    """One broker server's connection, opened lazily and reopened with backoff."""

    def __init__(self, broker: sinkurl.Broker) -> None:
        self.broker = broker
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._failures = 0
        self._next_try = 0.0
        self._last_error = ""

    async def start(self) -> None:
        """Nothing to do: the connection opens on the first publish."""

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._disconnect(conn)

    async def publish(self, target: sinkurl.Broker, msg: Message, limit: float) -> retry.Result:
        """Publish once to `target` (on this publisher's server) within `limit` seconds; a
        failure is a failed attempt."""
        try:
            async with asyncio.timeout(limit):
                conn = await self._connection()
                if conn is None:
                    return retry.Result(None, f"broker unreachable: {self._last_error}")
                return await self._publish(conn, target, msg)
        except Exception as exc:  # every library error is a failed attempt
            if self._broken(exc):
                await self._drop()
            return retry.Result(None, describe(exc, self.broker))

    async def _connection(self) -> Connection | None:
        if self._conn is not None:
            return self._conn
        async with self._lock:
            if self._conn is not None:
                return self._conn
            if time.monotonic() < self._next_try:
                return None
            try:
                self._conn = await self._connect()
            except Exception as exc:  # reported as the attempt's error
                self._failures += 1
                delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** min(self._failures - 1, 16))
                self._next_try = time.monotonic() + delay
                self._last_error = describe(exc, self.broker)
                return None
            self._failures = 0
            return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # the connection is broken already
                await self._disconnect(conn)

    @abstractmethod
    async def _connect(self) -> Connection: ...

    @abstractmethod
    async def _disconnect(self, conn: Connection) -> None: ...

    @abstractmethod
    async def _publish(
        self, conn: Connection, target: sinkurl.Broker, msg: Message
    ) -> retry.Result: ...

    def _broken(self, exc: BaseException) -> bool:
        """True when `exc` means the connection must be reopened (default: any error)."""
        return True
