"""WAL checkpoints for the SQLite store, run in a worker thread on a connection of their own.

A checkpoint copies the write-ahead log into the database file and syncs it to disk; done
automatically it would run inside a commit on the event loop and stall every request for the
length of an fsync. A PASSIVE checkpoint never waits for readers or writers, so it can run
beside the writer at any time; it never shrinks the WAL file, though, which keeps the size of
the largest burst for good. So once the store is idle (no commit since the last look) and the
WAL holds frames, a TRUNCATE checkpoint empties the file. It briefly holds off writers, which
is why it waits for an idle moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping

log = logging.getLogger("gateway.store")


class Checkpointer:
    def __init__(
        self,
        path: str,
        queries: Mapping[str, str],
        interval: float = 1.0,
        commits: Callable[[], int] = lambda: 0,
    ) -> None:
        self._path = path
        self._q = queries
        self._interval = interval
        self._commits = commits  # the store's commit count: unchanged means idle
        self._seen = -1
        self._dirty = True  # the WAL may hold frames (a file from before this process)
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="store-checkpointer")

    async def stop(self) -> None:
        """Let a checkpoint in progress finish (its thread cannot be interrupted), then close."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    def _checkpoint(self, query: str) -> bool:
        """Run one checkpoint; True when the WAL is left empty."""
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        busy, frames, _ = self._conn.execute(self._q[query]).fetchone()
        return bool(busy == 0 and frames == 0)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._interval)
                    break
                commits = self._commits()
                idle, self._seen = commits == self._seen, commits
                if idle and not self._dirty:
                    continue
                query = "checkpoint_truncate" if idle else "checkpoint"
                try:
                    # Shielded: a cancelled wait must not leave the thread using the connection
                    # while it is being closed.
                    empty = await asyncio.shield(asyncio.to_thread(self._checkpoint, query))
                    self._dirty = not empty
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            await asyncio.shield(asyncio.to_thread(self._close))
