"""`gateway sink`: real HTTP requests in every content mode, signatures checked with a real
Standard Webhooks signer, the chosen status answered, and the command's own failures."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from gateway.devtools.sink import DEFAULT_PORTS, Settings, serve
from tests.integration.events import binary, order, structured
from tests.integration.process import ROOT, free_port, run_cli

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ATTRIBUTE = re.compile(r"^    ([a-z0-9]+) {2,}(.*)$")  # "    name    value" in a block
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of the sink").decode()


class Running:
    def __init__(self, port: int, out: io.StringIO) -> None:
        self.port, self.out = port, out
        self.url = f"http://127.0.0.1:{port}"

    def blocks(self) -> list[str]:
        """Every printed request, one string each."""
        text = self.out.getvalue()
        return ["--- " + b for b in text.split("\n--- ")[1:]]

    async def post(self, path: str = "/hook", **kwargs: object) -> tuple[int, str]:
        """POST, and the status and the block printed for it."""
        before = len(self.blocks())
        async with aiohttp.ClientSession() as http, http.post(self.url + path, **kwargs) as r:
            status = r.status
        blocks = self.blocks()
        assert len(blocks) == before + 1, self.out.getvalue()
        return status, blocks[-1]


async def _start(settings: Settings) -> tuple[asyncio.Task[None], asyncio.Event, io.StringIO]:
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(serve(settings, out, stop), name="sink under test")
    for _ in range(200):
        if "listening" in out.getvalue() or task.done():
            break
        await asyncio.sleep(0.01)
    assert "listening" in out.getvalue(), task.exception() if task.done() else out.getvalue()
    return task, stop, out


@pytest.fixture
async def sink() -> AsyncIterator[Running]:
    port = free_port()
    task, stop, out = await _start(Settings(ports=(port,), secret=SECRET))
    yield Running(port, out)
    stop.set()
    await task


def signed(body: bytes, secret: str = SECRET, msg_id: str = "msg_test") -> dict[str, str]:
    """Standard Webhooks headers made by the reference package, not by the gateway."""
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }


async def test_binary_mode_shows_attributes_and_pretty_json(sink: Running) -> None:
    event = order("ord-bin-1", amount=4200, subject="eu")
    message = binary(event)
    status, block = await sink.post("/hooks/events", **message)
    assert status == 200
    head, *lines = block.splitlines()
    assert f"POST 127.0.0.1:{sink.port}/hooks/events" in head
    assert "  binary  " in head
    assert "signature: not signed" in head
    assert "-> 200" in head
    attributes = dict(m.groups() for line in lines if (m := ATTRIBUTE.match(line)))
    assert attributes["id"] == "ord-bin-1"
    assert attributes["source"] == "/shop"
    assert attributes["type"] == "com.example.order.created"
    assert attributes["subject"] == "eu"
    assert attributes["datacontenttype"] == "application/json"
    data = block.split("data:\n", 1)[1]
    assert orjson.loads(data) == {"order_id": "ord-bin-1", "amount": 4200}
    assert '\n          "amount": 4200' in data  # pretty-printed, indented under the block


async def test_structured_mode(sink: Running) -> None:
    status, block = await sink.post(**structured(order("ord-st-1")))
    assert status == 200
    assert "  structured  " in block.splitlines()[0]
    assert "ord-st-1" in block
    assert orjson.loads(block.split("data:\n", 1)[1]) == {"order_id": "ord-st-1", "amount": 1200}


async def test_batch_mode_lists_every_event(sink: Running) -> None:
    events = [orjson.loads(structured(order(f"ord-batch-{i}"))["data"]) for i in range(3)]
    body = orjson.dumps(events)
    headers = {"Content-Type": "application/cloudevents-batch+json; charset=utf-8"}
    status, block = await sink.post(data=body, headers=headers)
    assert status == 200
    assert "  batch of 3  " in block.splitlines()[0]
    for i in range(3):
        assert f"[{i}]" in block
        assert f"ord-batch-{i}" in block


async def test_text_and_binary_data(sink: Running) -> None:
    text_headers = {"ce-specversion": "1.0", "ce-id": "t-1", "ce-source": "/s", "ce-type": "t",
                    "Content-Type": "text/plain; charset=utf-8"}
    _, block = await sink.post(data=b"line one\nline two", headers=text_headers)
    assert "data:\n        line one\n        line two" in block
    raw = bytes(range(200))
    bin_headers = {**text_headers, "ce-id": "b-1", "Content-Type": "application/octet-stream"}
    _, block = await sink.post(data=raw, headers=bin_headers)
    assert "data: 200 bytes of binary data, base64 " + base64.b64encode(raw).decode()[:48] in block


async def test_a_request_that_is_not_a_cloudevent_is_shown_and_answered(sink: Running) -> None:
    status, block = await sink.post(data=b"{}", headers={"Content-Type": "application/json"})
    assert status == 200
    assert "not a CloudEvent" in block.splitlines()[0]
    assert "no ce- headers" in block


async def test_signature_verified_with_the_right_secret(sink: Running) -> None:
    message = structured(order("ord-signed"))
    body = message["data"]
    headers = {**message["headers"], **signed(body)}
    _, block = await sink.post(data=body, headers=headers)
    assert "signature: verified" in block.splitlines()[0]
    assert "webhook-id: msg_test" in block


async def test_signature_invalid_with_another_secret_or_a_changed_body(sink: Running) -> None:
    message = structured(order("ord-wrong"))
    body = message["data"]
    headers = {**message["headers"], **signed(body, OTHER_SECRET)}
    _, block = await sink.post(data=body, headers=headers)
    assert "signature: INVALID (No matching signature found)" in block.splitlines()[0]
    tampered = body.replace(b"ord-wrong", b"ord-wronG")
    _, block = await sink.post(data=tampered, headers={**message["headers"], **signed(body)})
    assert "signature: INVALID" in block.splitlines()[0]


async def test_the_chosen_status_is_answered() -> None:
    port = free_port()
    task, stop, out = await _start(Settings(ports=(port,), status=503))
    try:
        message = structured(order("ord-503"))
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/x", **message) as resp:
                assert resp.status == 503
            handshake = {"WebHook-Request-Origin": "gateway.test"}
            async with http.options(f"http://127.0.0.1:{port}/x", headers=handshake) as resp:
                assert resp.status == 200
                assert resp.headers["WebHook-Allowed-Origin"] == "gateway.test"
        assert "-> 503" in out.getvalue()
        assert "webhook handshake from gateway.test" in out.getvalue()
    finally:
        stop.set()
        await task


async def test_several_ports_one_listener_each() -> None:
    ports = (free_port(), free_port())
    task, stop, out = await _start(Settings(ports=ports))
    try:
        async with aiohttp.ClientSession() as http:
            for port in ports:
                async with http.post(f"http://127.0.0.1:{port}/p{port}",
                                     **structured(order())) as resp:
                    assert resp.status == 200
        for port in ports:
            assert f"POST 127.0.0.1:{port}/p{port}" in out.getvalue()
    finally:
        stop.set()
        await task


def test_defaults_are_the_example_ports() -> None:
    from gateway.cli import parser

    args = parser().parse_args(["sink"])
    assert (args.port, args.status, args.secret) == (None, 200, None)
    assert DEFAULT_PORTS == (9001, 9002, 9003)
    args = parser().parse_args(["sink", "--port", "1", "2", "--port", "3", "--status", "503"])
    assert (args.port, args.status) == ([1, 2, 3], 503)


def test_a_bad_secret_or_a_busy_port_fails() -> None:
    bad = run_cli("sink", "--secret", "not-a-secret")
    assert bad.returncode == 2
    assert "whsec_" in bad.stderr
    for status in ("102", "600", "ok"):
        bad = run_cli("sink", "--status", status)
        assert bad.returncode == 2
        assert "--status" in bad.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "sink", "--port", str(port)],
            capture_output=True, text=True, cwd=ROOT, timeout=30, check=False,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
