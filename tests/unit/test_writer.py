"""The SQLite store's group commit (`gateway.store.writer.Writer`) on a real database file: units
queued together share one transaction with no savepoint; a failing unit rolls back alone, its
caller gets the error and every other unit's writes commit (they run again, each in a savepoint,
after the rollback that `on_abort` is told of)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.store.queries import load_queries
from gateway.store.writer import Writer

QUERIES = load_queries("sqlite.sql")
Work = Callable[[sqlite3.Connection], tuple[str, int]]


class Ledger:
    """A table `t`, a writer on it, the statements it ran and the rollbacks it was told of."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL").fetchall()
        self.conn.execute("CREATE TABLE t (name TEXT PRIMARY KEY)")
        self.statements: list[str] = []
        self.conn.set_trace_callback(self.statements.append)
        self.aborts = 0
        self.pending = 0
        self.writer = Writer(self.conn, QUERIES, self.committed, on_abort=self.aborted)
        self.runs: dict[str, int] = {}

    def committed(self, delta: int) -> None:
        self.pending += delta

    def aborted(self) -> None:
        self.aborts += 1

    def insert(self, name: str, fail: bool = False) -> Work:
        def work(conn: sqlite3.Connection) -> tuple[str, int]:
            self.runs[name] = self.runs.get(name, 0) + 1
            conn.execute("INSERT INTO t (name) VALUES (?)", (name,))
            if fail:
                raise ValueError(f"{name} failed")
            return name, 1

        return work

    def names(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT name FROM t ORDER BY name")]

    def savepoints(self) -> int:
        return sum(1 for s in self.statements if s.lstrip().upper().startswith("SAVEPOINT"))


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    made = Ledger(tmp_path / "w.db")
    made.writer.start()
    try:
        yield made
    finally:
        await made.writer.stop()
        made.conn.close()


async def test_units_queued_together_share_one_transaction_without_savepoints(
    ledger: Ledger,
) -> None:
    results = await asyncio.gather(*(ledger.writer.submit(ledger.insert(n)) for n in "abc"))
    assert results == ["a", "b", "c"]
    assert ledger.writer.commits == 1
    assert ledger.savepoints() == 0
    assert ledger.names() == ["a", "b", "c"]
    assert ledger.pending == 3
    assert ledger.aborts == 0


async def test_a_failing_unit_rolls_back_alone(ledger: Ledger) -> None:
    futures = [
        ledger.writer.queue(ledger.insert("a")),
        ledger.writer.queue(ledger.insert("b", fail=True)),
        ledger.writer.queue(ledger.insert("c")),
    ]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0] == "a"
    assert results[2] == "c"
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "b failed"
    assert ledger.names() == ["a", "c"]  # b's insert went with it
    assert ledger.writer.commits == 1
    assert ledger.pending == 2  # only the units that committed count
    # The first run without savepoints was rolled back and said so; then one savepoint each.
    assert ledger.aborts == 1
    assert ledger.savepoints() == 3
    assert ledger.runs == {"a": 2, "b": 2, "c": 1}  # c never ran in the rolled-back pass
    # The next batch goes without savepoints again.
    before = ledger.savepoints()
    assert await ledger.writer.submit(ledger.insert("d")) == "d"
    assert ledger.savepoints() == before
    assert ledger.names() == ["a", "c", "d"]
