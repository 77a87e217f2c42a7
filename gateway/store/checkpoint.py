"""WAL checkpoints for the SQLite store, run in a worker thread on a connection of their own.

A checkpoint copies the write-ahead log into the database file and syncs it to disk; done
automatically it would run inside a commit on the event loop and stall every request for the
length of an fsync. A PASSIVE checkpoint never waits for readers or writers, so it can run
beside the writer at any time.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping

log = logging.getLogger("gateway.store")


class Checkpointer:
    def __init__(self, path: str, queries: Mapping[str, str], interval: float = 1.0) -> None:
        self._path = path
        self._q = queries
        self._interval = interval
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="store-checkpointer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._conn.execute(self._q["checkpoint"]).fetchall()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)
