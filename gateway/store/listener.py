"""Wakeups across replicas: one connection LISTENs; every commit that makes rows due NOTIFYs.

The same session holds the replica's identity lock (`on_connect` runs on every new session).

A replica's dispatcher sleeps until its own ingest wakes it or its poll interval ends; the
notification (sent inside the committing transaction, so it arrives only after the rows are
visible) wakes the other replicas at once. Polling stays the fallback: a notification missed
while the listening connection was down only costs up to one poll interval, and on reconnecting
the callback runs once to catch up.

Several deployments may share one database in different schemas: the payload is the schema's
name and a listener ignores the others'.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gateway.errors import StoreUnavailable
from gateway.store.pgapi import FAILURES, Connection, connect, unavailable

log = logging.getLogger("gateway.store")

CHANNEL = "gateway_wakeup"
HEALTH_INTERVAL = 5.0  # seconds between checks that the listening connection still answers
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)  # then 5 s between attempts


class Listener:
    def __init__(
        self,
        dsn: str,
        schema: str,
        callback: Callable[[], None],
        *,
        ping: str,
        seconds: float,
        on_connect: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._callback = callback
        self._ping = ping
        self._seconds = seconds
        self._on_connect = on_connect
        self._conn: Connection | None = None
        self._lost = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """LISTEN now (notifications sent from here on arrive), then watch the connection."""
        await self._listen()
        self._task = asyncio.create_task(self._watch(), name="store-listener")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._close()

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload == self._schema:
            self._callback()

    async def _listen(self) -> None:
        conn = await connect(self._dsn, seconds=self._seconds)
        lost = asyncio.Event()  # one per connection: a closing old one cannot flag the new one
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            if self._on_connect is not None:  # e.g. session locks that live as long as it
                await self._on_connect(conn)
            await conn.add_listener(CHANNEL, self._notified)
        except FAILURES as exc:
            await _close_quietly(conn)
            raise unavailable(exc) from exc
        self._conn, self._lost = conn, lost

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close_quietly(conn)

    async def _watch(self) -> None:
        while not self._stop.is_set():
            if await self._healthy():
                continue
            await self._close()
            await self._reconnect()

    async def _healthy(self) -> bool:
        """Wait one health interval; False when the connection was lost or does not answer."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(self._lost, self._stop), HEALTH_INTERVAL)
        if self._stop.is_set():
            return True
        if self._lost.is_set() or self._conn is None:
            return False
        try:
            await self._conn.execute(self._ping)
        except FAILURES:
            return False
        return True

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            try:
                await self._listen()
            except StoreUnavailable as exc:
                if attempt == 0:
                    log.warning("wakeup listener down (%s); polling until it is back", exc.detail)
                attempt += 1
                continue
            log.info("wakeup listener back")
            self._callback()  # notifications sent while it was down were missed
            return


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def _close_quietly(conn: Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except FAILURES:
        conn.terminate()
