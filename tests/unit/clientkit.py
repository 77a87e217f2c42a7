"""What the delivery client's tests share: raw asyncio servers run by scripts, for where the
exact bytes on the wire matter; an aiohttp subscriber that records every request, over HTTP
and over TLS; a stand-in for DNS; the client factory; and small helpers for waiting and for
reading requests. The test modules import the fixtures by name."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy
from pytest_aiohttp import AiohttpServer
from yarl import URL

from gateway.delivery.client import Client
from tests.integration.certs import Authority

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


# -- raw servers: exact bytes ----------------------------------------------------------------


class Peer:
    """One connection to a `RawServer`, as the server sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.port: int = writer.get_extra_info("peername")[1]
        self.requests: list[bytes] = []  # each request's head and body, as received
        self.go = asyncio.Event()  # for scripts that answer when the test says so
        self.ended = asyncio.Event()  # the connection is over, whichever side ended it

    async def request(self) -> bytes | None:
        """The next request's head and body, or None once the client ended the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            request = head + await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def hang_up(self) -> None:
        self.writer.close()


Script = Callable[[Peer, int], Awaitable[None]]  # a connection and its index on the server


class RawServer:
    """Runs `script` on each connection; afterwards reads until the client ends it."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.peers: list[Peer] = []
        self.errors: list[Exception] = []
        self.host = ""
        self.port = 0
        self._talks: set[asyncio.Task[None]] = set()
        self._serving: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str) -> None:
        self._server = await asyncio.start_server(self._serve, host, 0)
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/") -> URL:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return URL(f"http://{host}:{self.port}{path}")

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for talk in self._talks:
            talk.cancel()  # the connection's own task ends by itself once its talk is over
        await asyncio.gather(*self._talks, *self._serving, return_exceptions=True)
        await self._server.wait_closed()
        if self.errors:
            raise self.errors[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving = asyncio.current_task()
        assert serving is not None
        self._serving.add(serving)
        peer = Peer(reader, writer)
        self.peers.append(peer)
        talk = asyncio.create_task(self._talk(peer, len(self.peers) - 1))
        self._talks.add(talk)
        await asyncio.wait([talk])
        peer.ended.set()
        writer.close()

    async def _talk(self, peer: Peer, index: int) -> None:
        try:
            await self.script(peer, index)
            while not peer.writer.is_closing() and await peer.reader.read(65536):
                pass  # anything more is ignored until the client ends the connection
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            self.errors.append(exc)  # a broken script fails the test at teardown


def serving(answer: bytes = OK) -> Script:
    """Answers every request on the connection with `answer`."""

    async def script(peer: Peer, index: int) -> None:
        while await peer.request() is not None:
            await peer.send(answer)

    return script


def per_connection(*scripts: Script) -> Script:
    """The first connection runs the first script, and so on; later ones run the last."""

    async def script(peer: Peer, index: int) -> None:
        await scripts[min(index, len(scripts) - 1)](peer, index)

    return script


async def dropping(peer: Peer, index: int) -> None:
    """Reads a request and closes the connection without a word."""
    await peer.request()
    peer.hang_up()


def gathered(count: int) -> Script:
    """The first `count` connections are answered once each has a request in, and then
    served; any later connection is served at once."""
    barrier = asyncio.Barrier(count)

    async def script(peer: Peer, index: int) -> None:
        await peer.request()
        await barrier.wait()
        await peer.send(OK)
        await serving()(peer, index)

    return per_connection(*[script] * count, serving())


class StartRaw(Protocol):
    def __call__(self, script: Script, host: str = ...) -> Awaitable[RawServer]: ...


@pytest.fixture
async def raw_server() -> AsyncIterator[StartRaw]:
    servers: list[RawServer] = []

    async def start(script: Script, host: str = "127.0.0.1") -> RawServer:
        server = RawServer(script)
        await server.start(host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


# -- resolvers and clients -------------------------------------------------------------------


class Names(AbstractResolver):
    """Stands in for DNS, which a test cannot steer: each name answers its (address, port)
    pairs whatever port was asked, so a URL on the scheme's default port reaches a test
    server. Records what was asked."""

    def __init__(self, names: dict[str, list[tuple[str, int]]] | None = None) -> None:
        self.names = names or {}
        self.asked: list[tuple[str, int]] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append((host, port))
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=at,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address, at in self.names[host]
        ]

    async def close(self) -> None:
        pass


class MakeClient(Protocol):
    def __call__(
        self,
        *,
        limit: int = ...,
        resolver: AbstractResolver | None = ...,
        ssl_context: ssl.SSLContext | None = ...,
        max_body: int = ...,
    ) -> Client: ...


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    made: list[Client] = []

    def make(
        *,
        limit: int = 8,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = 8192,
    ) -> Client:
        client = Client(
            limit=limit,
            resolver=resolver if resolver is not None else Names(),
            ssl_context=ssl_context,
            max_body=max_body,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


async def ended(peer: Peer, within: float = 1.0) -> None:
    """Waits until the connection is over (fails the test if it is not, within `within`)."""
    await asyncio.wait_for(peer.ended.wait(), within)


def lines(request: bytes) -> list[str]:
    """The request line and the header lines of a request."""
    return request.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")


def values(request: bytes, name: str) -> list[str]:
    found = []
    for line in lines(request)[1:]:
        field, _, value = line.partition(":")
        if field.lower() == name.lower():
            found.append(value.strip())
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- an aiohttp subscriber -------------------------------------------------------------------


class Sink:
    """Records every request with the client port it came from."""

    def __init__(self, gather: int = 3) -> None:
        self.seen: list[tuple[str, CIMultiDictProxy[str], bytes, int]] = []
        self.release = asyncio.Event()  # /hold answers once set
        self.gather = gather
        self.gathered = asyncio.Event()  # /gather answers once `gather` requests are in
        self.app = web.Application()
        self.app.router.add_route("*", "/ok", self.ok)
        self.app.router.add_route("*", "/hold", self.hold)
        self.app.router.add_route("*", "/gather", self.gathering)

    async def record(self, request: web.Request) -> None:
        assert request.transport is not None
        port = request.transport.get_extra_info("peername")[1]
        self.seen.append((request.method, request.headers, await request.read(), port))

    async def ok(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(text="thanks")

    async def hold(self, request: web.Request) -> web.Response:
        await self.record(request)
        await self.release.wait()
        return web.Response(text="late")

    async def gathering(self, request: web.Request) -> web.Response:
        await self.record(request)
        if len(self.seen) >= self.gather:
            self.gathered.set()
        await self.gathered.wait()
        return web.Response(text="together")

    def ports(self) -> list[int]:
        return [port for *_, port in self.seen]


@pytest.fixture
async def sink(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[Sink, URL]]:
    recorder = Sink()
    server = await aiohttp_server(recorder.app)
    yield recorder, server.make_url("")
    recorder.release.set()
    recorder.gathered.set()


@pytest.fixture
async def tls_sink(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> tuple[Sink, int, ssl.SSLContext]:
    """An aiohttp subscriber over TLS with a certificate for 127.0.0.1 and localhost from a CA
    made for the test, and a client context that trusts that CA."""
    authority = Authority(tmp_path)
    pair = authority.issue("127.0.0.1", server=True)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(pair.cert, pair.key)
    recorder = Sink()
    server = await aiohttp_server(recorder.app, ssl=served)
    assert server.port is not None
    return recorder, server.port, ssl.create_default_context(cafile=str(authority.pair.cert))
