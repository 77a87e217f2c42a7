"""The SQLite store's write-ahead log: emptied once the store is idle, and started over while
writes never stop (`gateway.store.checkpoint`), with nothing lost either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.event import DataKind, Event
from gateway.store import SqliteStore, checkpoint
from gateway.store.base import NewEvent
from tests.unit.test_sqlite_store import WINDOW, db, rows

__all__ = ["db"]  # fixture


PAYLOAD = b'{"pad": "' + b"x" * 4000 + b'"}'


def size(path: Path) -> int:
    return path.stat().st_size


def burst(ids: range, prefix: str) -> list[NewEvent]:
    """Events of about 4 KB for subscription "a"."""
    return [
        NewEvent(Event({"specversion": "1.0", "id": f"{prefix}{n}", "source": "/s", "type": "t"},
                       PAYLOAD, DataKind.JSON), ("a",))
        for n in ids
    ]  # fmt: skip


async def test_the_wal_file_is_emptied_once_the_store_is_idle(db: Path) -> None:
    store = SqliteStore(str(db))
    await store.open()
    wal = Path(f"{db}-wal")
    try:
        for batch in range(40):
            await store.append(burst(range(100), f"b{batch}-"), 100.0, WINDOW)
        assert size(wal) > 1_000_000  # the burst went through the WAL
        for _ in range(150):  # up to 15 s; an idle store takes about a checkpoint interval
            if size(wal) == 0:
                break
            await asyncio.sleep(0.1)
        assert size(wal) == 0
        assert await store.pending() == 4000  # and nothing was lost on the way
    finally:
        await store.close()
    assert len(rows(db, "SELECT seq FROM events")) == 4000


async def test_the_wal_starts_over_while_writes_never_stop(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint beside a writer that never pauses cannot copy the frames written meanwhile,
    and SQLite reuses the WAL from its start only once every frame was copied: the checkpointer
    holds the writer for the rest, so the file stays near one interval's writes instead of
    holding every write since the last idle moment."""
    monkeypatch.setattr(checkpoint, "INTERVAL", 0.2)
    store = SqliteStore(str(db))
    await store.open()
    wal = Path(f"{db}-wal")
    written = appended = 0
    try:
        deadline = asyncio.get_running_loop().time() + 1.6  # eight intervals, never idle
        while asyncio.get_running_loop().time() < deadline:
            await store.append(burst(range(appended, appended + 20), "w"), 100.0, WINDOW)
            appended += 20
            written += 20 * len(PAYLOAD)
        assert written > 8_000_000  # enough went through for the difference to show
        # Without the restart the WAL holds every payload written and the pages around them
        # (about twice as much); with it, the writes since the latest restart (a slow fsync in
        # the checkpoint can let that reach half).
        assert size(wal) < written
        assert await store.pending() == appended  # nothing lost on the way
    finally:
        await store.close()
