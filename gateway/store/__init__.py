"""Durable storage of events and deliveries; `open_store` picks the store for a `store:` URL.

`sqlite:////abs/path.db[?synchronous=normal|full]` (three slashes and a relative path: relative to
the working directory), `sqlite://:memory:`, `memory://` (unit tests), and
`postgresql://user:password@host/db[?pool_min=1&pool_max=10&timeout=10]` (also `postgres://`) for
several replicas on one database; the other query parameters of a PostgreSQL URL (`sslmode`,
`search_path`, ...) go to the driver. Errors never repeat the URL, which may carry a password.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

from gateway.errors import StoreUnavailable
from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.postgres import PostgresStore, parse_url
from gateway.store.sqlite import MEMORY, SYNCHRONOUS, SqliteStore

__all__ = ["MemoryStore", "PostgresStore", "SqliteStore", "Store", "open_store"]


def open_store(url: str) -> Store:
    """The store a `store:` URL names (not opened yet: call `await store.open()`)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise StoreUnavailable("store unavailable: the store URL has no scheme (sqlite://...)")
    if scheme == "sqlite":
        return _sqlite(rest)
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("postgresql", "postgres"):
        dsn, settings = parse_url(url)
        return PostgresStore(dsn, settings)
    raise StoreUnavailable(
        f"store unavailable: unknown store URL scheme {scheme!r} "
        "(use sqlite://, postgresql:// or memory://)"
    )


def _sqlite(rest: str) -> SqliteStore:
    location, _, query = rest.partition("?")
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise StoreUnavailable(f"store unavailable: unknown SQLite option(s): {', '.join(unknown)}")
    synchronous = options.get("synchronous", ["normal"])[-1].lower()
    if synchronous not in SYNCHRONOUS:
        raise StoreUnavailable(
            f"store unavailable: synchronous must be one of {', '.join(SYNCHRONOUS)}"
        )
    if location in ("", MEMORY):
        return SqliteStore(MEMORY, synchronous=synchronous)
    # sqlite:///relative/path.db and sqlite:////absolute/path.db (the path follows the third /).
    if not location.startswith("/") or len(location) == 1:
        raise StoreUnavailable("store unavailable: a SQLite URL is sqlite:///path/to/file.db")
    return SqliteStore(unquote(location[1:]), synchronous=synchronous)
