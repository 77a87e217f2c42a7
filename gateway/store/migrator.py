"""Forward schema migrations for the SQL stores: numbered scripts applied once, in order, at open.

The scripts live in `migrations/<dialect>/NNNN_name.sql` (dialect `sqlite` or `postgres`); the
runner's own queries in `migrations/<dialect>.sql`. A store records each applied version in its
`schema_migrations` table. Each migration runs in a transaction of its own together with its
record, so a crash leaves the schema at a whole version. A database whose version is newer than
the newest script this code has is refused: an older gateway must not write to a newer schema.
On PostgreSQL every migration transaction first takes an advisory lock and reads the version
again, so replicas starting at the same time apply each migration exactly once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from gateway.errors import StoreUnavailable
from gateway.store.pgapi import Connection
from gateway.store.queries import parse_queries

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_CLASS = 0x67617465  # first key of the migrations' advisory lock ("gate")
DIALECTS = ("sqlite", "postgres")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    """The migrations shipped for a dialect, in version order."""
    if dialect not in DIALECTS:
        raise ValueError(f"no migrations for {dialect!r}")
    folder = resources.files("gateway.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match is not None:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match.group(1)), match.group(2), text))
    plan = tuple(sorted(found, key=lambda m: m.version))
    check_plan(plan)
    return plan


def check_plan(plan: Sequence[Migration]) -> None:
    """Versions must run 1, 2, 3, ... without gaps or repeats."""
    versions = [m.version for m in plan]
    if versions != list(range(1, len(plan) + 1)):
        raise ValueError(f"migration versions must be 1..{len(plan)}, found {versions}")


@cache
def _queries(dialect: str) -> Mapping[str, str]:
    path = resources.files("gateway.store").joinpath("migrations", f"{dialect}.sql")
    return parse_queries(path.read_text(encoding="utf-8"))


def _next(version: int, plan: Sequence[Migration]) -> Migration | None:
    """The migration to apply after `version`; refuse a database newer than the plan."""
    latest = plan[-1].version if plan else 0
    if version > latest:
        raise StoreUnavailable(
            f"store unavailable: the database has schema version {version}; this gateway "
            f"knows up to {latest}: run a newer gateway"
        )
    return plan[version] if version < latest else None


def statements(script: str) -> list[str]:
    """Split a SQLite script into statements (sqlite3 runs one at a time inside a transaction).

    A statement ends at the end of a line where it is complete; comment-only text is dropped.
    """
    found: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines(keepends=True):
        buffer.append(line)
        text = "".join(buffer)
        if sqlite3.complete_statement(text):
            found.append(text.strip())
            buffer = []
    rest = [line for line in buffer if line.strip() and not line.lstrip().startswith("--")]
    if rest:
        raise ValueError(f"incomplete statement at the end of the script: {''.join(rest)!r}")
    return found


def migrate_sqlite(conn: sqlite3.Connection, plan: Sequence[Migration], now: float) -> int:
    """Bring a SQLite database (autocommit connection) up to date; return its version."""
    check_plan(plan)
    q = _queries("sqlite")
    while True:
        conn.execute(q["begin"])
        try:
            conn.execute(q["version_table"])
            (version,) = conn.execute(q["version"]).fetchone()
            migration = _next(int(version), plan)
            if migration is not None:
                for statement in statements(migration.sql):
                    conn.execute(statement)
                record = {"version": migration.version, "name": migration.name, "now": now}
                conn.execute(q["record"], record)
            conn.execute(q["commit"])
        except BaseException:
            if conn.in_transaction:
                conn.execute(q["rollback"])
            raise
        if migration is None:
            return int(version)


async def migrate_postgres(conn: Connection, plan: Sequence[Migration], now: float) -> int:
    """Bring a PostgreSQL schema up to date; return its version. Safe from several replicas."""
    check_plan(plan)
    q = _queries("postgres")
    if await conn.fetchval(q["schema"]) is None:
        raise StoreUnavailable(
            "store unavailable: no schema of the connection's search_path exists; create it "
            "or fix search_path"
        )
    while True:
        async with conn.transaction():
            await conn.execute(q["lock"], LOCK_CLASS)
            await conn.execute(q["version_table"])
            version = int(await conn.fetchval(q["version"]))
            migration = _next(version, plan)
            if migration is None:
                return version
            await conn.execute(migration.sql)
            await conn.execute(q["record"], migration.version, migration.name, now)
