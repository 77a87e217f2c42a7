"""The HTTP/1.1 client of deliveries: keep-alive connections per origin, one request at a time
on each, a deadline per request, never a redirect followed.

Measured under fan-out load, aiohttp's client spent about three times the CPU per request of
this one (its request and response objects, payload registry, cookie and redirect handling,
timer context per request): a third of a busy gateway's time. A delivery needs none of that:
it writes one request whose headers and body are ready, and reads the status, the headers the
caller asks about, and at most `max_body` bytes of the body so the connection can be reused.
Responses are parsed by llhttp (`httptools`), the parser of Node.js.

RFC 9112 is what it implements: `Host` first, `Content-Length` on every body, chunked and
close-delimited responses read (not kept), `Connection: close` and HTTP/1.0 answers end the
connection, interim 1xx answers skipped. Names resolve through the egress guard on every new
connection (`GuardedResolver`); literal addresses are the caller's to check.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import httptools
from aiohttp.abc import AbstractResolver
from yarl import URL

from gateway.egress import literal_address

# An idle connection older than this is closed rather than reused (aiohttp's default too): a
# subscriber that closes idle connections sooner is caught by the retry below.
KEEPALIVE = 15.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class ServerDisconnected(ConnectionError):
    """The connection ended before a response's status line arrived."""


class InvalidResponse(ValueError):
    """What came back is not an HTTP/1.x response."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-cased names; the first value of a repeated header


class _Connection(asyncio.Protocol):
    """One connection: writes a request, parses its response, knows whether it can be reused."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self._loop = loop
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._status = 0
        self._body = 0
        self._received = False  # any byte of the current response
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing asked: a server talking out of turn
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(InvalidResponse("the sink switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(InvalidResponse(f"invalid response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._status:  # the status arrived; a body cut short does not change it
            waiter.set_result(Response(self._status, self._headers))
        elif isinstance(exc, OSError):
            waiter.set_exception(exc)
        else:
            waiter.set_exception(ServerDisconnected("server disconnected"))

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = {}  # a new dict: an answer's, once returned, is never written to again
        waiter = self._waiter
        if waiter is None or waiter.done():
            # RFC 9112 9.3: one response per request; a message after the answer is the server
            # talking out of turn, and what follows on this connection cannot be trusted.
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._status:  # RFC 9110 6.5.1: trailer fields are not merged into the headers
            return
        # RFC 9112 5: whitespace around a field value is not part of it (llhttp keeps trailing).
        text = value.decode("latin-1").strip(" \t")
        self._headers.setdefault(name.decode("latin-1").lower(), text)

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body += len(body)
        if self._body > self._max_body:  # not worth reading: answer now, drop the connection
            self._answer(keep=False)
            self.close()

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # RFC 9110 15.2: an interim answer; the final one follows
            self._status, self._headers = 0, {}
            return
        self._answer(keep=self._parser.should_keep_alive())

    # -- the exchange -----------------------------------------------------------------------

    async def exchange(self, head: bytes, body: bytes | None) -> Response:
        assert self._transport is not None
        self._waiter = self._loop.create_future()
        self._headers, self._status, self._body, self._received = {}, 0, 0, False
        self.reusable = False
        self._transport.writelines((head, body) if body else (head,))
        try:
            return await self._waiter
        finally:
            self._waiter = None

    @property
    def received(self) -> bool:
        return self._received

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _answer(self, *, keep: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.reusable = keep
            waiter.set_result(Response(self._status, self._headers))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int


class Client:
    """A pool of keep-alive connections, at most `limit` requests at once over all origins."""

    def __init__(
        self,
        *,
        limit: int,
        resolver: AbstractResolver,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = 8192,
    ) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._resolver = resolver
        self._ssl = ssl_context
        self._max_body = max_body
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._closed = False

    async def request(
        self,
        method: str,
        url: URL,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
        within: float,
    ) -> Response:
        """Send one request and read its answer within `within` seconds (waiting for a slot
        and connecting included). Raises TimeoutError, OSError (refused, reset, TLS, egress),
        ServerDisconnected, InvalidResponse, or ValueError for a request that cannot be written
        (a header with a line break)."""
        if self._closed:
            raise RuntimeError("the client is closed")
        origin = _Origin(url.scheme, url.raw_host or "", url.port or _DEFAULT_PORTS[url.scheme])
        head = _head(method, url, origin, headers, body)
        async with asyncio.timeout(within), self._slots:
            conn = self._reuse(origin)
            if conn is not None:
                try:
                    return await self._exchange(origin, conn, head, body)
                except (ServerDisconnected, ConnectionResetError):
                    # The subscriber closed the idle connection as we wrote to it; nothing of
                    # an answer came back, so a new connection tries once more (RFC 9112 9.3.1).
                    if conn.received:
                        raise
            conn = await self._connect(origin)
            return await self._exchange(origin, conn, head, body)

    async def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _exchange(
        self, origin: _Origin, conn: _Connection, head: bytes, body: bytes | None
    ) -> Response:
        try:
            response = await conn.exchange(head, body)
        except BaseException:
            conn.close()
            raise
        if conn.reusable and not conn.closed and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(origin, []).append(conn)
        else:
            conn.close()
        return response

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closed
            if not conn.closed and now - conn.idle_since < KEEPALIVE:
                return conn
            conn.close()  # and on to an older one: open still, or closed here if too old
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        if literal_address(origin.host) is not None:
            targets = [(origin.host, origin.port, 0)]
        else:
            found = await self._resolver.resolve(origin.host, origin.port, socket.AF_UNSPEC)
            targets = [(r["host"], r["port"], r["family"]) for r in found]
        tls = None
        if origin.scheme == "https":
            tls = self._ssl or _default_tls()
        error: OSError | None = None
        for host, port, family in targets:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._max_body),
                    host,
                    port,
                    family=family,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
            except OSError as exc:
                error = exc
                continue
            return conn
        assert error is not None
        raise error


_TLS: list[ssl.SSLContext] = []


def _default_tls() -> ssl.SSLContext:
    """The system's trust store and verification (created once: loading it is slow)."""
    if not _TLS:
        _TLS.append(ssl.create_default_context())
    return _TLS[0]


def _head(
    method: str,
    url: URL,
    origin: _Origin,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
) -> bytes:
    """The request line and header section, ending in the empty line (RFC 9112 3, 5)."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    if url.explicit_port is not None and url.explicit_port != _DEFAULT_PORTS[origin.scheme]:
        host = f"{host}:{origin.port}"
    lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1"]
    given = set()
    for name, value in headers:
        if "\r" in value or "\n" in value or "\x00" in value or not _token(name):
            raise ValueError(f"header {name!r} cannot be written")  # RFC 9110 5.5: no CR/LF
        given.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in given:
        lines.insert(1, f"Host: {host}")
    if url.raw_user is not None or url.raw_password is not None:
        if "authorization" in given:
            raise ValueError("a sink URL with credentials cannot also have an Authorization")
        # RFC 7617: credentials in the URL become Basic authentication.
        pair = f"{url.user or ''}:{url.password or ''}".encode()
        lines.append(f"Authorization: Basic {base64.b64encode(pair).decode('ascii')}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode()


@functools.lru_cache(maxsize=256)
def _token(name: str) -> bool:
    """RFC 9110 5.1: a field name is a token."""
    return bool(name) and _TCHAR.issuperset(name)
