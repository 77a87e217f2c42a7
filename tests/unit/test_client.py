"""The delivery client against real servers: aiohttp subscribers, and raw asyncio servers
where the exact bytes on the wire matter (malformed, unusual or out-of-turn answers)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
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

from gateway.delivery import client as client_module
from gateway.delivery.client import Client, InvalidResponse, ServerDisconnected
from gateway.delivery.egress import EgressRefused, GuardedResolver
from gateway.egress import EgressPolicy
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


# -- keep-alive and the limit ----------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(
    sink: tuple[Sink, URL], make_client: MakeClient
) -> None:
    recorder, base = sink
    client = make_client()
    statuses = [
        (await client.request("POST", base / "ok", [("X-N", "1")], b'{"n": 1}', 2.0)).status,
        (await client.request("GET", base / "ok", [], None, 2.0)).status,
        (await client.request("OPTIONS", base / "ok", [], None, 2.0)).status,
    ]
    assert statuses == [200, 200, 200]
    assert [(method, body) for method, _, body, _ in recorder.seen] == [
        ("POST", b'{"n": 1}'),
        ("GET", b""),
        ("OPTIONS", b""),
    ]
    assert len(set(recorder.ports())) == 1


async def test_concurrent_requests_open_a_connection_each_and_all_are_kept(
    sink: tuple[Sink, URL], make_client: MakeClient
) -> None:
    recorder, base = sink  # /gather answers once all three requests are in
    client = make_client()
    first = await asyncio.gather(
        *(client.request("POST", base / "gather", [], b"x", 2.0) for _ in range(3))
    )
    assert [r.status for r in first] == [200, 200, 200]
    opened = set(recorder.ports())
    assert len(opened) == 3
    # All three went back to the pool: three more at once reuse them and open none.
    again = await asyncio.gather(
        *(client.request("POST", base / "ok", [], b"x", 2.0) for _ in range(3))
    )
    assert [r.status for r in again] == [200, 200, 200]
    assert set(recorder.ports()[3:]) == opened


async def test_limit_bounds_the_requests_in_flight_over_all_origins(
    sink: tuple[Sink, URL], make_client: MakeClient, aiohttp_server: AiohttpServer
) -> None:
    recorder, base = sink
    other = Sink()
    elsewhere = await aiohttp_server(other.app)
    client = make_client(limit=2)
    held = [
        asyncio.create_task(client.request("POST", base / "hold", [], b"", 5.0)) for _ in range(2)
    ]
    await until(lambda: len(recorder.seen) == 2)
    # A third waits for a slot, and waiting counts against its deadline.
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await client.request("POST", base / "ok", [], b"", 0.2)
    assert 0.15 <= time.monotonic() - started < 1.0
    # The limit is over all origins: a request to another server waits too.
    waiting = asyncio.create_task(client.request("POST", elsewhere.make_url("/ok"), [], b"", 5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert (len(recorder.seen), len(other.seen)) == (2, 0)
    recorder.release.set()
    answers = await asyncio.gather(*held, waiting)
    assert [r.status for r in answers] == [200, 200, 200]
    assert (len(recorder.seen), len(other.seen)) == (2, 1)


# -- answers that keep or end the connection -------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(OK, id="content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", id="no-content"),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            id="http-1.0-keep-alive",
        ),
    ],
)
async def test_a_complete_answer_keeps_the_connection(
    raw_server: StartRaw, make_client: MakeClient, answer: bytes
) -> None:
    server = await raw_server(serving(answer))
    client = make_client()
    for _ in range(3):
        response = await client.request("POST", server.url(), [], b"{}", 2.0)
        assert response.status in (200, 204)
    assert [len(peer.requests) for peer in server.peers] == [3]


async def test_a_chunked_answer_in_pieces_is_read_to_its_end_and_trailers_are_not_headers(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    pieces = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n",
        b"5\r\nhel",
        b"lo\r\n",
        b"6\r\n world\r\n",
        b"0\r\nRetry-After: 99\r\n\r\n",  # a trailer section (RFC 9112 7.1.2)
    )

    async def script(peer: Peer, index: int) -> None:
        while await peer.request() is not None:
            for piece in pieces:
                await peer.send(piece)
                await asyncio.sleep(0.005)

    server = await raw_server(script)
    client = make_client()
    for _ in range(2):
        response = await client.request("POST", server.url(), [], b"{}", 2.0)
        assert response.status == 202
        # RFC 9110 6.5.1: a trailer field is not merged into the header section.
        assert response.headers == {"transfer-encoding": "chunked", "x-kind": "chunked"}
    assert [len(peer.requests) for peer in server.peers] == [2]


@pytest.mark.parametrize(
    ("answer", "server_hangs_up"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-Kind: last\r\nContent-Length: 2\r\n\r\nok",
            False,
            id="connection-close",
        ),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nX-Kind: last\r\nContent-Length: 2\r\n\r\nok",
            False,
            id="http-1.0-with-length",
        ),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nX-Kind: last\r\n\r\nthe body runs until the connection ends",
            True,
            id="http-1.0-close-delimited",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Kind: last\r\n\r\nno length and no chunks: until the end",
            True,
            id="http-1.1-close-delimited",
        ),
    ],
)
async def test_an_answer_that_ends_the_connection_is_returned_and_the_next_uses_a_new_one(
    raw_server: StartRaw, make_client: MakeClient, answer: bytes, server_hangs_up: bool
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(answer)
        if server_hangs_up:
            peer.hang_up()

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    response = await client.request("POST", server.url(), [], b"{}", 2.0)
    assert (response.status, response.headers["x-kind"]) == (200, "last")
    await ended(server.peers[0])  # when the server keeps it open, the client closes it
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 201
    assert [len(peer.requests) for peer in server.peers] == [1, 1]


@pytest.mark.parametrize(
    ("head", "size", "kept"),
    [
        pytest.param(b"Content-Length: %d", 1024, True, id="max_body-with-length"),
        pytest.param(b"Content-Length: %d", 1025, False, id="beyond-with-length"),
        pytest.param(b"Transfer-Encoding: chunked", 1024, True, id="max_body-chunked"),
        pytest.param(b"Transfer-Encoding: chunked", 1025, False, id="beyond-chunked"),
        pytest.param(b"Content-Length: %d", 10**7, False, id="far-beyond"),
    ],
)
async def test_a_body_beyond_max_body_is_not_read_and_its_connection_not_kept(
    raw_server: StartRaw, make_client: MakeClient, head: bytes, size: int, kept: bool
) -> None:
    chunked = b"chunked" in head
    start = b"HTTP/1.1 202 Accepted\r\n" + (head if chunked else head % size) + b"\r\n\r\n"
    sent = min(size, 4096)
    body = b"%x\r\n%s\r\n" % (sent, b"x" * sent) if chunked else b"x" * sent
    if sent == size:
        body += b"0\r\n\r\n" if chunked else b""

    async def script(peer: Peer, index: int) -> None:
        # The far-beyond body is never sent in full: only an early answer beats the timeout.
        while await peer.request() is not None:
            await peer.send(start + body)

    server = await raw_server(script)
    client = make_client(max_body=1024)
    started = time.monotonic()
    response = await client.request("POST", server.url(), [], b"{}", 2.0)
    assert response.status == 202
    assert time.monotonic() - started < 1.0
    if not kept:
        await ended(server.peers[0])
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 202
    assert [len(peer.requests) for peer in server.peers] == ([2] if kept else [1, 1])


@pytest.mark.parametrize(
    "interim",
    [
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="100"),
        pytest.param(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", id="103"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n", id="two"),
    ],
)
@pytest.mark.parametrize("together", [False, True], ids=["apart", "together"])
async def test_interim_answers_are_skipped_for_the_final_one(
    raw_server: StartRaw, make_client: MakeClient, interim: bytes, together: bool
) -> None:
    final = b"HTTP/1.1 201 Created\r\nLocation: /orders/7\r\nContent-Length: 0\r\n\r\n"

    async def script(peer: Peer, index: int) -> None:
        while await peer.request() is not None:
            if together:
                await peer.send(interim + final)
            else:
                await peer.send(interim)
                await asyncio.sleep(0.01)
                await peer.send(final)

    server = await raw_server(script)
    client = make_client()
    for _ in range(2):  # and the connection is still good for the next request
        response = await client.request("POST", server.url(), [], b"{}", 2.0)
        assert response.status == 201
        assert response.headers == {"location": "/orders/7", "content-length": "0"}
    assert [len(peer.requests) for peer in server.peers] == [2]


async def test_a_redirect_is_returned_not_followed(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
    server = await raw_server(serving(moved))
    response = await make_client().request("POST", server.url("/hook"), [], b"{}", 2.0)
    assert (response.status, response.headers["location"]) == (302, "/elsewhere")
    assert [lines(r)[0] for r in server.peers[0].requests] == ["POST /hook HTTP/1.1"]


# -- connections the server ends --------------------------------------------------------------


async def test_an_idle_connection_the_server_closed_is_replaced(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(OK)
        await peer.go.wait()
        peer.hang_up()  # a server-side keep-alive timeout

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 200
    server.peers[0].go.set()
    await ended(server.peers[0])
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 201
    assert [len(peer.requests) for peer in server.peers] == [1, 1]


async def test_a_reused_connection_dropped_as_the_request_arrives_is_retried_on_a_new_one(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(OK)
        await dropping(peer, index)  # the idle connection closed just as a request came

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    assert (await client.request("POST", server.url(), [], b"1", 2.0)).status == 200
    assert (await client.request("POST", server.url(), [], b"2", 2.0)).status == 201
    first_peer, second_peer = server.peers
    assert second_peer.requests == [first_peer.requests[1]]  # the same request, once more


async def test_the_retry_on_a_new_connection_happens_once(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(OK)
        await dropping(peer, index)

    server = await raw_server(per_connection(first, dropping))
    client = make_client()
    assert (await client.request("POST", server.url(), [], b"1", 2.0)).status == 200
    with pytest.raises(ServerDisconnected):
        await client.request("POST", server.url(), [], b"2", 2.0)
    assert [len(peer.requests) for peer in server.peers] == [2, 1]


async def test_a_fresh_connection_dropped_without_an_answer_is_server_disconnected(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(dropping)
    with pytest.raises(ServerDisconnected):
        await make_client().request("POST", server.url(), [], b"{}", 2.0)
    assert [len(peer.requests) for peer in server.peers] == [1]  # not retried


async def test_no_retry_once_an_answer_has_begun(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(OK)
        await peer.request()
        await peer.send(b"HTTP/1.1 20")  # the request was seen: sending it again would repeat it
        peer.hang_up()

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    assert (await client.request("POST", server.url(), [], b"1", 2.0)).status == 200
    with pytest.raises(ServerDisconnected):
        await client.request("POST", server.url(), [], b"2", 2.0)
    assert [len(peer.requests) for peer in server.peers] == [2]


async def test_a_body_cut_short_keeps_the_status_and_drops_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    cut = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 100\r\n\r\nabc"

    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(cut)
        peer.hang_up()

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    response = await client.request("POST", server.url(), [], b"{}", 2.0)
    assert (response.status, response.headers["retry-after"]) == (503, "3")
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 201
    assert [len(peer.requests) for peer in server.peers] == [1, 1]


# -- what is not HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="bad-status"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", id="bad-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            id="two-lengths",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", id="bad-header"),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\n\r\n",
            id="switching-protocols",
        ),
    ],
)
async def test_garbage_is_an_invalid_response_and_the_connection_is_dropped(
    raw_server: StartRaw, make_client: MakeClient, garbage: bytes
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(garbage)  # and keeps the connection open

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    with pytest.raises(InvalidResponse):
        await client.request("POST", server.url(), [], b"{}", 2.0)
    await ended(server.peers[0])
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 201


async def test_bytes_sent_while_no_request_is_outstanding_do_not_answer_the_next(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    stray = b"HTTP/1.1 299 Stray\r\nContent-Length: 0\r\n\r\n"

    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(OK)
        await peer.go.wait()
        await peer.send(stray)  # out of turn, with no request outstanding
        await serving(CREATED)(peer, index)

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    assert (await client.request("POST", server.url(), [], b"1", 2.0)).status == 200
    server.peers[0].go.set()
    await ended(server.peers[0])  # the client dropped the connection that talked out of turn
    assert (await client.request("POST", server.url(), [], b"2", 2.0)).status == 201
    assert [len(peer.requests) for peer in server.peers] == [1, 1]


@pytest.mark.parametrize(
    "stray",
    [
        pytest.param(
            b"HTTP/1.1 299 Stray\r\nX-Stray: yes\r\nContent-Length: 0\r\n\r\n", id="whole"
        ),
        pytest.param(b"HTTP/1.1 2", id="begun"),
    ],
)
async def test_bytes_right_after_an_answer_do_not_answer_the_next(
    raw_server: StartRaw, make_client: MakeClient, stray: bytes
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(OK + stray)  # one write: the stray bytes come with the answer
        await serving(CREATED)(peer, index)

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    response = await client.request("POST", server.url(), [], b"1", 2.0)
    assert (response.status, response.headers) == (200, {"content-length": "2"})
    assert (await client.request("POST", server.url(), [], b"2", 2.0)).status == 201
    assert "x-stray" not in response.headers  # nor added to the answer afterwards


async def test_an_answer_in_tiny_pieces_is_parsed_whole(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 40 + b"\r\nContent-Length: 2\r\n\r\nok"

    async def script(peer: Peer, index: int) -> None:
        while await peer.request() is not None:
            for at in range(0, len(answer), 3):
                await peer.send(answer[at : at + 3])
                await asyncio.sleep(0.001)

    server = await raw_server(script)
    client = make_client()
    for _ in range(2):
        response = await client.request("POST", server.url(), [], b"{}", 2.0)
        assert response.status == 200
        assert response.headers == {"x-long": "v" * 40, "content-length": "2"}
    assert [len(peer.requests) for peer in server.peers] == [2]


# -- deadlines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"HTTP/1.1 200 OK\r\n", id="status-line"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="interim-only"),
    ],
)
async def test_a_hanging_server_times_out_and_its_connection_is_dropped(
    raw_server: StartRaw, make_client: MakeClient, partial: bytes
) -> None:
    async def first(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.send(partial)  # and never more

    server = await raw_server(per_connection(first, serving(CREATED)))
    client = make_client()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await client.request("POST", server.url(), [], b"{}", 0.2)
    assert 0.15 <= time.monotonic() - started < 1.0
    await ended(server.peers[0])
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 201
    assert [len(peer.requests) for peer in server.peers] == [1, 1]


async def test_a_closed_port_is_connection_refused(make_client: MakeClient) -> None:
    url = URL(f"http://127.0.0.1:{closed_port()}/hook")
    with pytest.raises(ConnectionRefusedError):
        await make_client().request("POST", url, [], b"{}", 2.0)


# -- the request on the wire -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/hooks/a%2Fb/%C3%A9?x=1&y=%20z&e=%3D", "/hooks/a%2Fb/%C3%A9?x=1&y=%20z&e=%3D"),
        ("/hook#fragment", "/hook"),
        ("", "/"),
        ("?only=query", "/?only=query"),
    ],
)
async def test_the_request_line_carries_the_raw_path_and_query(
    raw_server: StartRaw, make_client: MakeClient, path: str, target: str
) -> None:
    server = await raw_server(serving())
    url = URL(f"http://127.0.0.1:{server.port}{path}")
    await make_client().request("PUT", url, [], b"{}", 2.0)
    [request] = server.peers[0].requests
    assert lines(request)[0] == f"PUT {target} HTTP/1.1"


async def test_host_comes_first_with_the_port(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    headers = [("User-Agent", "probe/1"), ("X-Team", "billing"), ("X-Team", "ops")]
    await make_client().request("POST", server.url("/hook"), headers, b"{}", 2.0)
    [request] = server.peers[0].requests
    assert lines(request) == [
        "POST /hook HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "User-Agent: probe/1",
        "X-Team: billing",
        "X-Team: ops",
        "Content-Length: 2",
    ]


@pytest.mark.parametrize(
    ("url", "host", "asked"),
    [
        ("http://sink.example/hook", "sink.example", 80),
        ("http://sink.example:80/hook", "sink.example", 80),
        ("http://sink.example:8080/hook", "sink.example:8080", 8080),
    ],
)
async def test_host_has_the_port_only_when_it_is_not_the_default(
    raw_server: StartRaw, make_client: MakeClient, url: str, host: str, asked: int
) -> None:
    server = await raw_server(serving())
    names = Names({"sink.example": [("127.0.0.1", server.port)]})
    await make_client(resolver=names).request("POST", URL(url), [], b"{}", 2.0)
    assert names.asked == [("sink.example", asked)]
    [request] = server.peers[0].requests
    assert lines(request)[1] == f"Host: {host}"


async def test_an_ipv6_literal_is_bracketed_in_host(make_client: MakeClient) -> None:
    server = RawServer(serving())
    try:
        await server.start("::1")
    except OSError as exc:
        pytest.skip(f"the IPv6 loopback address ::1 cannot be bound on this machine: {exc}")
    try:
        url = URL(f"http://[::1]:{server.port}/hook")
        assert (await make_client().request("POST", url, [], b"{}", 2.0)).status == 200
        [request] = server.peers[0].requests
        assert lines(request)[1] == f"Host: [::1]:{server.port}"
    finally:
        await server.stop()


async def test_a_given_host_header_is_sent_instead_of_the_default(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    await make_client().request("POST", server.url(), [("host", "front.example")], b"{}", 2.0)
    [request] = server.peers[0].requests
    assert values(request, "Host") == ["front.example"]


@pytest.mark.parametrize(
    ("body", "length"),
    [(b'{"total": 12}', ["13"]), (b"", ["0"]), (None, [])],
)
async def test_content_length_is_sent_for_every_body_and_only_for_a_body(
    raw_server: StartRaw, make_client: MakeClient, body: bytes | None, length: list[str]
) -> None:
    server = await raw_server(serving())
    client = make_client()
    for _ in range(2):  # the framing holds for a second request on the connection
        assert (await client.request("POST", server.url(), [], body, 2.0)).status == 200
    requests = server.peers[0].requests
    assert len(requests) == 2
    for request in requests:
        assert values(request, "Content-Length") == length
        assert values(request, "Transfer-Encoding") == []
        assert request.partition(b"\r\n\r\n")[2] == (body or b"")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Note", "a\r\nX-Injected: 1"),
        ("X-Note", "a\nb"),
        ("X-Note", "a\rb"),
        ("X-Note", "a\x00b"),
        ("X Note", "v"),
        ("X-Note:", "v"),
        ("X-Note\r\nX-Injected", "v"),
        ("X-Nöte", "v"),
        ("", "v"),
    ],
)
async def test_an_unwritable_header_raises_before_anything_is_sent(
    raw_server: StartRaw, make_client: MakeClient, name: str, value: str
) -> None:
    server = await raw_server(serving())
    client = make_client()
    with pytest.raises(ValueError, match="cannot be written"):
        await client.request("POST", server.url(), [(name, value)], b"{}", 2.0)
    assert (await client.request("POST", server.url("/next"), [], b"{}", 2.0)).status == 200
    [peer] = server.peers  # the refused request opened no connection and sent nothing
    assert [lines(r)[0] for r in peer.requests] == ["POST /next HTTP/1.1"]


@pytest.mark.parametrize(
    ("userinfo", "pair"),
    [
        ("us%40er:p%3Ass%20w%C3%B6rd", "us@er:p:ss wörd"),
        ("token", "token:"),
        ("user:", "user:"),
    ],
)
async def test_url_credentials_become_basic_authorization(
    raw_server: StartRaw, make_client: MakeClient, userinfo: str, pair: str
) -> None:
    server = await raw_server(serving())
    url = URL(f"http://{userinfo}@127.0.0.1:{server.port}/hook")
    await make_client().request("POST", url, [("X-Team", "a")], b"{}", 2.0)
    [request] = server.peers[0].requests
    [authorization] = values(request, "Authorization")
    scheme, _, encoded = authorization.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded, validate=True).decode() == pair
    # The credentials go nowhere else: not in the request line, not in Host.
    assert lines(request)[:2] == ["POST /hook HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]


@pytest.mark.parametrize("name", ["Authorization", "authorization"])
async def test_url_credentials_and_an_authorization_header_conflict(
    raw_server: StartRaw, make_client: MakeClient, name: str
) -> None:
    server = await raw_server(serving())
    client = make_client()
    url = URL(f"http://user:pw@127.0.0.1:{server.port}/hook")
    with pytest.raises(ValueError, match="Authorization"):
        await client.request("POST", url, [(name, "Bearer tok")], b"{}", 2.0)
    await client.request("POST", server.url("/next"), [], b"{}", 2.0)
    [peer] = server.peers
    assert [lines(r)[0] for r in peer.requests] == ["POST /next HTTP/1.1"]


async def test_response_header_names_are_lowercased_and_the_first_value_kept(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(
        serving(
            b"HTTP/1.1 429 Too Many Requests\r\n"
            b"X-Thing: one\r\nx-thing: two\r\nX-THING: three\r\n"
            b"Retry-After:  7 \t\r\n"  # RFC 9112 5: whitespace around a value is not the value
            b"WebHook-Allowed-Origin: gateway.example\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
    )
    response = await make_client().request("POST", server.url(), [], b"{}", 2.0)
    assert response.status == 429
    assert response.headers == {
        "x-thing": "one",
        "retry-after": "7",
        "webhook-allowed-origin": "gateway.example",
        "content-length": "0",
    }


# -- HTTPS -----------------------------------------------------------------------------------


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


async def test_https_to_a_server_the_context_trusts(
    tls_sink: tuple[Sink, int, ssl.SSLContext], make_client: MakeClient
) -> None:
    recorder, port, trust = tls_sink
    names = Names({"localhost": [("127.0.0.1", port)]})
    client = make_client(ssl_context=trust, resolver=names)
    for _ in range(2):
        url = URL(f"https://127.0.0.1:{port}/ok")
        assert (await client.request("POST", url, [], b"{}", 2.0)).status == 200
    # By name, on the scheme's default port: the name is what the certificate is checked for.
    assert (await client.request("POST", URL("https://localhost/ok"), [], b"{}", 2.0)).status == 200
    assert names.asked == [("localhost", 443)]
    hosts = [headers["Host"] for _, headers, _, _ in recorder.seen]
    assert hosts == [f"127.0.0.1:{port}", f"127.0.0.1:{port}", "localhost"]
    assert len(set(recorder.ports()[:2])) == 1  # kept alive over TLS too


async def test_https_without_the_ca_fails_certificate_verification(
    tls_sink: tuple[Sink, int, ssl.SSLContext], make_client: MakeClient
) -> None:
    recorder, port, _ = tls_sink
    client = make_client()  # the system's trust store, which does not know the test CA
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        await client.request("POST", URL(f"https://127.0.0.1:{port}/ok"), [], b"{}", 2.0)
    assert recorder.seen == []


async def test_the_system_trust_store_follows_ssl_cert_file(
    tls_sink: tuple[Sink, int, ssl.SSLContext],
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a context of its own the client takes the system's default verify paths, which
    an operator can point at a private CA with SSL_CERT_FILE (as the README says)."""
    recorder, port, _ = tls_sink
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "test-ca.crt"))
    monkeypatch.setattr(client_module, "_TLS", [])  # the default context is made once
    client = make_client()
    response = await client.request("POST", URL(f"https://127.0.0.1:{port}/ok"), [], b"{}", 2.0)
    assert response.status == 200
    assert len(recorder.seen) == 1


async def test_https_checks_the_certificate_for_the_name_not_the_address(
    tls_sink: tuple[Sink, int, ssl.SSLContext], make_client: MakeClient
) -> None:
    recorder, port, trust = tls_sink
    names = Names({"sink.example": [("127.0.0.1", port)]})  # the certificate is not for it
    client = make_client(ssl_context=trust, resolver=names)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"sink\.example"):
        await client.request("POST", URL(f"https://sink.example:{port}/ok"), [], b"{}", 2.0)
    assert recorder.seen == []


# -- the egress guard ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "address"),
    [
        (EgressPolicy(), "169.254.169.254"),
        (EgressPolicy(deny=(ipaddress.ip_network("127.0.0.0/8"),)), "127.0.0.1"),
    ],
)
async def test_a_name_resolving_to_a_refused_address_is_never_connected_to(
    raw_server: StartRaw, make_client: MakeClient, policy: EgressPolicy, address: str
) -> None:
    server = await raw_server(serving())
    names = Names({"rebound.example": [(address, server.port)]})
    client = make_client(resolver=GuardedResolver(policy, names))
    url = URL(f"http://rebound.example:{server.port}/hook")
    with pytest.raises(EgressRefused, match=rf"rebound\.example resolves to {re.escape(address)}"):
        await client.request("POST", url, [], b"{}", 2.0)
    # Literal addresses are the caller's to check: they skip the resolver.
    assert (await client.request("POST", server.url("/next"), [], b"{}", 2.0)).status == 200
    assert names.asked == [("rebound.example", server.port)]
    [peer] = server.peers  # only the literal request connected
    assert [lines(r)[0] for r in peer.requests] == ["POST /next HTTP/1.1"]


async def test_a_name_resolving_to_an_allowed_loopback_address_connects(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    # The refused address is dropped and the allowed one used.
    names = Names({"sink.example": [("169.254.169.254", server.port), ("127.0.0.1", server.port)]})
    client = make_client(resolver=GuardedResolver(EgressPolicy(), names))
    url = URL(f"http://sink.example:{server.port}/hook")
    assert (await client.request("POST", url, [], b"{}", 2.0)).status == 200
    [request] = server.peers[0].requests
    assert lines(request)[1] == f"Host: sink.example:{server.port}"


async def test_each_resolved_address_is_tried_in_turn(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    refused = closed_port()
    names = Names(
        {
            "sink.example": [("127.0.0.1", refused), ("127.0.0.1", server.port)],
            "down.example": [("127.0.0.1", refused)],
        }
    )
    client = make_client(resolver=names)
    assert (await client.request("POST", URL("http://sink.example/"), [], b"", 2.0)).status == 200
    with pytest.raises(ConnectionRefusedError):
        await client.request("POST", URL("http://down.example/"), [], b"", 2.0)


# -- the pool and close() --------------------------------------------------------------------


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


async def test_close_ends_the_idle_connections_and_refuses_later_requests(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(gathered(2))
    client = make_client()
    answers = await asyncio.gather(
        *(client.request("POST", server.url(), [], b"{}", 2.0) for _ in range(2))
    )
    assert [r.status for r in answers] == [200, 200]
    assert not any(peer.ended.is_set() for peer in server.peers)
    await client.close()
    for peer in server.peers:
        await ended(peer)
    with pytest.raises(RuntimeError, match="closed"):
        await client.request("POST", server.url(), [], b"{}", 2.0)
    assert len(server.peers) == 2


async def test_a_request_in_flight_at_close_completes_and_its_connection_is_not_kept(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def held(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.go.wait()
        await peer.send(OK)

    server = await raw_server(held)
    client = make_client()
    task = asyncio.create_task(client.request("POST", server.url(), [], b"{}", 2.0))
    await until(lambda: bool(server.peers) and bool(server.peers[0].requests))
    await client.close()
    server.peers[0].go.set()
    assert (await task).status == 200
    await ended(server.peers[0])


async def test_expired_idle_connections_are_all_closed_not_reused(
    raw_server: StartRaw, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await raw_server(gathered(3))
    client = make_client()
    await asyncio.gather(*(client.request("POST", server.url(), [], b"{}", 2.0) for _ in range(3)))
    monkeypatch.setattr(client_module, "KEEPALIVE", 0.0)  # every idle connection is too old
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 200
    assert len(server.peers) == 4
    for peer in server.peers[:3]:
        await ended(peer)  # closed, not left open outside the pool


async def test_an_idle_connection_the_server_closed_does_not_cost_the_live_ones(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def answering_on_cue(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.go.wait()
        await peer.send(OK)
        await serving()(peer, index)

    cue = answering_on_cue
    server = await raw_server(per_connection(cue, cue, cue, serving()))
    client = make_client()
    pending = {
        asyncio.create_task(client.request("POST", server.url(), [], b"{}", 2.0)) for _ in range(3)
    }
    await until(lambda: sum(len(peer.requests) for peer in server.peers) == 3)
    for peer in server.peers:  # answered one at a time: the pool holds them in this order
        peer.go.set()
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        assert [task.result().status for task in done] == [200]
    last = server.peers[2]
    last.hang_up()  # the most recently used connection, the first the pool hands out
    await ended(last)
    await asyncio.sleep(0.05)  # for the client to see the end
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 200
    assert len(server.peers) == 3  # an older connection was reused, none opened
    assert [len(peer.requests) for peer in server.peers] == [1, 2, 1]
    await client.close()
    for peer in server.peers:
        await ended(peer)
