"""The delivery client against real servers, as the wire sees it: keep-alive and the limit on
requests in flight, answers that keep or end the connection (complete, chunked,
close-delimited, beyond max_body, interim, redirects), connections the server ends and the one
retry on a reused connection, what is not HTTP, and deadlines. Aiohttp subscribers, and raw
asyncio servers where the exact bytes on the wire matter (malformed, unusual or out-of-turn
answers); the servers, the client factory and the helpers are in `clientkit`."""

from __future__ import annotations

import asyncio
import time

import pytest
from pytest_aiohttp import AiohttpServer
from yarl import URL

from gateway.delivery.client import InvalidResponse, ServerDisconnected
from tests.unit.clientkit import (
    CREATED,
    OK,
    MakeClient,
    Peer,
    Sink,
    StartRaw,
    closed_port,
    dropping,
    ended,
    lines,
    make_client,
    per_connection,
    raw_server,
    serving,
    sink,
    until,
)

__all__ = ["make_client", "raw_server", "sink"]  # fixtures


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
