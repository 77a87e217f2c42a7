"""Slow and idle clients are cut off, connections are capped, parser errors are logged clean.

Raw sockets against the real gateway app served as `gateway serve` serves it (its runner and
TCP site), and the real process for what reaches its log. Deadlines are set short; the waits
below are upper bounds that only a missing deadline reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.app import assemble, build
from gateway.config.loader import load
from gateway.ops.connections import GatewayRunner
from gateway.schemas import SchemaRegistry
from tests.integration.conftest import write_deployment
from tests.integration.process import Process, free_port

GUARD = 15.0  # longer than any deadline below; reached only when nothing cuts the client off
EVENT = orjson.dumps(
    {"specversion": "1.0", "id": "c-1", "source": "/conn", "type": "com.example.ping",
     "data": {"n": 1}}
)
Serve = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Serve the real gateway app through `GatewayRunner` with these `server:` settings."""
    runners: list[web.AppRunner] = []

    async def _serve(**server: Any) -> int:
        path = write_deployment(tmp_path, [], {"server": server})
        config = load(path, env={})
        registry, problems = SchemaRegistry.load(config.schemas)
        assert not problems
        gw = assemble(config, registry)
        runner = GatewayRunner(build(gw), config.server, gw.metrics, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    yield _serve
    for runner in runners:
        await runner.cleanup()


async def closed(reader: asyncio.StreamReader, timeout: float = GUARD) -> bytes:
    """Everything the server sends until it closes the connection."""
    got = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk


async def response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response's head and body (Content-Length framed)."""
    async with asyncio.timeout(GUARD):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return head, await reader.readexactly(length)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n".encode()


async def test_a_client_that_never_finishes_its_headers_is_cut_off(serve: Serve) -> None:
    port = await serve(header_timeout="300ms", keepalive_timeout="60s")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /events HTTP/1.1\r\nHost: gw\r\n")

    async def trickle() -> None:  # a byte now and then never resets the deadline
        with contextlib.suppress(OSError):
            for _ in range(int(GUARD * 10)):
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.1)

    dripping = asyncio.create_task(trickle())
    try:
        assert await closed(reader) == b""
    finally:
        dripping.cancel()
        writer.close()


async def test_a_client_that_sends_nothing_is_cut_off(serve: Serve) -> None:
    port = await serve(header_timeout="300ms", keepalive_timeout="60s")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await closed(reader) == b""
    writer.close()


async def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_ends(
    serve: Serve,
) -> None:
    port = await serve(body_timeout="300ms", header_timeout="60s", keepalive_timeout="60s")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /events HTTP/1.1\r\nHost: gw\r\n"
        b"Content-Type: application/cloudevents+json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT[:10])
    )
    got = await closed(reader)
    writer.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in head
    problem = orjson.loads(body)
    assert problem["status"] == 408
    assert "0.3s" in problem["detail"]


async def test_an_idle_keep_alive_connection_is_closed(serve: Serve) -> None:
    port = await serve(keepalive_timeout="300ms", header_timeout="60s")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(get("/healthz"))
    head, _ = await response(reader)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert await closed(reader) == b""
    writer.close()


async def test_keep_alive_outlives_the_header_deadline_and_bodies_in_time_are_served(
    serve: Serve,
) -> None:
    port = await serve(header_timeout="200ms", body_timeout="200ms", keepalive_timeout="60s")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for n in range(3):
        if n:
            await asyncio.sleep(0.5)  # idle between requests: keep-alive time, not the header's
        writer.write(
            b"POST /events HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/cloudevents+json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT.replace(b"c-1", b"c-%d" % n))
        )
        head, _ = await response(reader)
        assert head.startswith(b"HTTP/1.1 202 "), head
    writer.close()


async def test_connections_past_the_cap_get_503_and_one_log_line(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port = await serve(max_connections=2, header_timeout="60s")
    caplog.set_level(logging.INFO, logger="gateway.http")
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = await closed(reader)
        writer.close()
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ")
        assert orjson.loads(body)["status"] == 503
    lines = [r.getMessage() for r in caplog.records if "connection limit" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "2 connections open (server.max_connections)" in lines[0]
    # The slots come back when the held connections end.
    for _, writer in held:
        writer.close()
        await writer.wait_closed()
    for _ in range(100):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/healthz"))
        head, _ = await response(reader)
        writer.close()
        if head.startswith(b"HTTP/1.1 200 "):
            return
        await asyncio.sleep(0.05)  # the server has not seen the close yet
    pytest.fail("no slot came back after the held connections closed")


async def test_parser_errors_are_one_line_without_request_bytes(
    tmp_path: Path, processes: list[Process]
) -> None:
    config = write_deployment(tmp_path, [], {"server": {"port": free_port()}})
    proc = Process(config, int(load(config, env={}).server.port), tmp_path / "gateway.log")
    processes.append(proc)
    await proc.start()
    for raw in (
        # A control character in a header value, after a credential.
        b"POST /events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer TOPSECRET-1\r\n"
        b"X-Bad: a\x01b\r\nContent-Length: 0\r\n\r\n",
        # A header line without a colon that repeats the credential.
        b"POST /events HTTP/1.1\r\nHost: gw\r\nAuthorization Bearer TOPSECRET-2\r\n\r\n",
        # Chunked encoding with a broken chunk size.
        b"POST /events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer TOPSECRET-3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nTOPSECRET-3\r\n0\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
        writer.write(raw)
        got = await closed(reader)
        writer.close()
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request"), got[:200]
        assert b"application/problem+json" in head
        assert orjson.loads(body)["status"] == 400
        assert b"TOPSECRET" not in got
    proc.kill(15)
    assert proc.wait() == 0
    text = proc.log.read_text()
    assert "TOPSECRET" not in text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if "malformed request" in line]
    assert len(lines) == 3, text
    assert all(" INFO gateway.http refused a malformed request: 400 " in x for x in lines)
