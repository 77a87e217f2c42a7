"""WAL checkpoints for the SQLite store, run in a worker thread on a connection of their own.

A checkpoint copies the write-ahead log into the database file and syncs it to disk; done
automatically it would run inside a commit on the event loop and stall every request for the
length of an fsync. A PASSIVE checkpoint never waits for readers or writers, so it can run
beside the writer at any time. But SQLite starts writing the WAL from its beginning again only
once a checkpoint has copied every frame in it, and a checkpoint running beside a busy writer
never does: new frames arrive while it copies. Under steady traffic the WAL then grew without
bound (measured: 640 MB after 16 s at 500 events/s to three subscribers, 900 MB after 18 s of a
burst, each read slower as it grew). So each look that finds the store busy runs a PASSIVE
checkpoint beside the writer, then holds the writer between two transactions (the store's
`hold`; units queue meanwhile) and runs another, which copies only what was written during the
first: the WAL is then wholly copied and the next transaction writes it from the start, so the
file stays as large as a checkpoint interval's writes. Once the store is idle (no commit since
the last look) and the WAL holds frames, a TRUNCATE checkpoint empties the file; it briefly
holds off writers, which is why it waits for an idle moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

log = logging.getLogger("gateway.store")

INTERVAL = 1.0  # seconds between two looks at the store


class Checkpointer:
    def __init__(
        self,
        path: str,
        queries: Mapping[str, str],
        interval: float | None = None,
        commits: Callable[[], int] = lambda: 0,
        hold: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self._path = path
        self._q = queries
        self._interval = INTERVAL if interval is None else interval
        self._commits = commits  # the store's commit count: unchanged means idle
        self._hold = hold  # keeps the store's writer between two transactions
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

    async def _run(self, query: str) -> bool:
        """One checkpoint in the worker thread; True when the WAL is left empty. Shielded: a
        cancelled wait must not leave the thread using the connection while it is closed."""
        return await asyncio.shield(asyncio.to_thread(self._checkpoint, query))

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
                try:
                    if idle:
                        self._dirty = not await self._run("checkpoint_truncate")
                        continue
                    await self._run("checkpoint")
                    async with self._hold():  # the rest, with no writer: the WAL starts over
                        await self._run("checkpoint")
                    self._dirty = True
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            await asyncio.shield(asyncio.to_thread(self._close))
