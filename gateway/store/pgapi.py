"""The part of the PostgreSQL driver (asyncpg) the store uses, typed, and its errors wrapped.

asyncpg ships no type information, so the connections, pools and records the store touches are
described here as protocols; nothing else imports the driver. Every driver or socket error
becomes `StoreUnavailable` at this boundary, and no message ever repeats the connection URL
(it may hold a password).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, cast

import asyncpg  # type: ignore[import-untyped]

from gateway.errors import StoreUnavailable


class Record(Protocol):
    def __getitem__(self, key: int | str) -> Any: ...

    def __len__(self) -> int: ...


class Transaction(Protocol):
    async def start(self) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def __aenter__(self) -> Transaction: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Connection(Protocol):
    async def execute(self, query: str, *args: object) -> str: ...

    async def fetch(self, query: str, *args: object) -> list[Record]: ...

    async def fetchrow(self, query: str, *args: object) -> Record | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...

    def transaction(self) -> Transaction: ...

    def is_closed(self) -> bool: ...

    def get_server_pid(self) -> int: ...

    async def add_listener(self, channel: str, callback: Callable[..., None]) -> None: ...

    def add_termination_listener(self, callback: Callable[[Connection], None]) -> None: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...


class Pool(Protocol):
    def acquire(
        self, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Connection]: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...

    async def expire_connections(self) -> None: ...


# The connection went away (server restart, pg_terminate_backend, network): a fresh connection
# may well succeed, so a statement that never reached a commit can be tried once more, after
# every pooled connection was marked for replacement (when one died, its siblings likely did).
LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
# The database is there but did not answer in time: a statement or lock timeout, a pool with no
# free connection. Not lost (TimeoutError is an OSError since Python 3.11): never retried, and
# the pool is left alone, or a slow database would get a storm of reconnects on top.
TIMEOUTS: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncpg.QueryCanceledError,
    asyncpg.LockNotAvailableError,
)
# Everything the driver, the socket or a timeout can raise.
FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    *LOST,
    TimeoutError,
)


def is_lost(exc: BaseException) -> bool:
    """Whether `exc` says the connection is gone (not that a statement or its data was bad, nor
    that the database was slow)."""
    bad_input = (asyncpg.DataError, asyncpg.ClientConfigurationError)
    return isinstance(exc, LOST) and not isinstance(exc, (*bad_input, *TIMEOUTS))


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TIMEOUTS)


def unavailable(exc: BaseException) -> StoreUnavailable:
    """Wrap a driver error at the store boundary, keeping it as the cause."""
    text = str(exc).strip() or type(exc).__name__
    error = StoreUnavailable(f"store unavailable: PostgreSQL: {text}")
    error.__cause__ = exc
    return error


async def create_pool(dsn: str, *, min_size: int, max_size: int, seconds: float) -> Pool:
    """A connection pool; `seconds` bounds connecting and every statement."""
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, timeout=seconds, command_timeout=seconds
        )
    except FAILURES as exc:
        raise unavailable(exc) from exc
    except ValueError as exc:  # the driver refuses the URL itself (e.g. a bad sslmode)
        raise StoreUnavailable(f"store unavailable: invalid PostgreSQL URL: {exc}") from exc
    return cast(Pool, pool)


async def connect(dsn: str, *, seconds: float) -> Connection:
    """One connection outside the pool (for LISTEN, which must stay on one session)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=seconds, command_timeout=seconds)
    except FAILURES as exc:
        raise unavailable(exc) from exc
    return cast(Connection, conn)


async def close_pool(pool: Pool, grace: float) -> None:
    """Close gracefully (connections are given back first); terminate after `grace` seconds."""
    try:
        await asyncio.wait_for(pool.close(), grace)
    except FAILURES:
        pool.terminate()
