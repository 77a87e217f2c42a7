"""Forward schema migrations of the SQL stores: recorded once, newer databases refused, the
SQLite scripts split into statements. (Replicas migrating at once: test_postgres_store.py.)"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.errors import StoreUnavailable
from gateway.store import open_store
from gateway.store.base import Store
from gateway.store.migrator import Migration, check_plan, load_migrations, statements
from gateway.store.postgres import parse_url
from gateway.store.sqlite import SqliteStore
from tests.unit.test_store_contract import WINDOW, postgres_schema, routed


@dataclass
class Database:
    """An empty SQL database: a SQLite file or a PostgreSQL schema."""

    kind: str
    location: str  # the file, or the store URL

    def store(self) -> Store:
        return SqliteStore(self.location) if self.kind == "sqlite" else open_store(self.location)

    async def rows(self, query: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.location)) as conn:
                found = conn.execute(query).fetchall()
                conn.commit()
                return found
        conn = await asyncpg.connect(parse_url(self.location)[0])
        try:
            return [tuple(row) for row in await conn.fetch(query)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", str(tmp_path / "gateway.db"))
    else:
        async with postgres_schema() as url:
            yield Database("postgres", url)


async def test_migrations_run_once_and_a_newer_database_is_refused(database: Database) -> None:
    for _ in range(2):  # the second start finds nothing to do
        store = database.store()
        await store.open()
        await store.close()
    plan = load_migrations(database.kind)
    assert await database.rows("SELECT version, name FROM schema_migrations ORDER BY 1") == [
        (m.version, m.name) for m in plan
    ]
    assert plan[0].name == "initial"
    await database.rows("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    latest = plan[-1].version
    with pytest.raises(StoreUnavailable, match=f"version 99; this gateway knows up to {latest}"):
        await database.store().open()


async def test_a_sqlite_file_from_before_migrations_is_taken_over(tmp_path: Path) -> None:
    path = str(tmp_path / "gateway.db")
    old = SqliteStore(path)
    await old.open()
    await old.append([routed("e1", "a", "b")], 100.0, WINDOW)
    await old.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        # As the file was before migrations: only migration 1's tables.
        conn.execute("DROP TABLE schema_migrations")
        conn.execute("ALTER TABLE deliveries DROP COLUMN replica")  # migration 3
        conn.execute("DROP INDEX deliveries_batch")  # migration 8
        conn.execute("ALTER TABLE deliveries DROP COLUMN batch")

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.pending() == 2
        assert await store.append([routed("e1", "a")], 101.0, WINDOW) == [True]
    finally:
        await store.close()
    versions = await Database("sqlite", path).rows("SELECT version FROM schema_migrations")
    assert versions == [(m.version,) for m in load_migrations("sqlite")]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n",
         ["CREATE TABLE a (x INT);", "CREATE TABLE b (y INT);"]),
        ("-- heading; with a semicolon\nCREATE TABLE a (\n    x INT -- why; so\n);\n-- end\n",
         ["-- heading; with a semicolon\nCREATE TABLE a (\n    x INT -- why; so\n);"]),
        ("INSERT INTO t VALUES ('a;\nb');\n", ["INSERT INTO t VALUES ('a;\nb');"]),
        ("-- nothing but comments\n\n", []),
    ],
)
def test_sqlite_migration_scripts_split_into_statements(script: str, expected: list[str]) -> None:
    assert statements(script) == expected


def test_a_statement_left_open_is_an_error() -> None:
    with pytest.raises(ValueError, match="incomplete statement"):
        statements("CREATE TABLE a (x INT);\nCREATE TABLE b (\n")


@pytest.mark.parametrize("versions", [[2], [1, 3], [1, 1]])
def test_migration_versions_must_run_from_one_without_gaps(versions: list[int]) -> None:
    with pytest.raises(ValueError, match="migration versions"):
        check_plan([Migration(v, f"m{v}", "SELECT 1;") for v in versions])


async def test_tallies_start_from_the_rows_a_file_already_holds(tmp_path: Path) -> None:
    from gateway.store.base import Ack, Attempt, Kind, Retry
    from gateway.store.ops import Counts

    path = str(tmp_path / "gateway.db")
    old = SqliteStore(path)
    await old.open()
    await old.append([routed("e1", "a"), routed("e2", "a")], 100.0, WINDOW)
    first, second = await old.lease("a", Kind.SINK, 2, 100.0, 30.0)
    await old.finish([Ack(first, Attempt(200, 1.0)), Retry(second, Attempt(503, 1.0), 200.0)], 101)
    await old.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:  # as before migration 10
        conn.execute("DROP TABLE tallies")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 10")
        conn.commit()

    store = SqliteStore(path)
    await store.open()
    try:
        assert (await store.counts())["a"] == Counts(1, 100.0, 1, 1, 0, "HTTP 503")
    finally:
        await store.close()
