"""One delivery attempt against real aiohttp subscribers that answer, fail, hang or hang up."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gateway.config.model import Delivery, Mode, Subscription
from gateway.delivery.retry import Result
from gateway.delivery.sender import DEFAULT_USER_AGENT, Sender
from gateway.event import DataKind, Event
from gateway.store.base import DeadLetterInfo, Kind, Leased

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: object


class Subscriber:
    """Records every request; each path answers in its own way."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/ok", self.answering(200))
        self.app.router.add_post("/fail", self.answering(500))
        self.app.router.add_post("/gone", self.answering(410))
        self.app.router.add_post("/busy", self.answering(429, {"Retry-After": "7"}))
        self.app.router.add_post("/moved", self.answering(302, {"Location": "/ok"}))
        self.app.router.add_post("/hang", self.hang)
        self.app.router.add_post("/reset", self.reset)
        self.app.router.add_post("/huge", self.huge)

    async def record(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(Seen(request.path, dict(request.headers), await request.read(), peer))

    def answering(
        self, status: int, headers: dict[str, str] | None = None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            await self.record(request)
            return web.Response(status=status, headers=headers, text="thanks")

        return handle

    async def hang(self, request: web.Request) -> web.Response:
        await self.record(request)
        await self.release.wait()
        return web.Response(status=200)

    async def reset(self, request: web.Request) -> web.Response:
        await self.record(request)
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=200)

    async def huge(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        response = web.StreamResponse(status=202)
        await response.prepare(request)
        chunk = b"x" * 65536
        for _ in range(64):  # 4 MiB that the sender must not hold
            await response.write(chunk)
        await response.write_eof()
        return response

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]


@pytest.fixture
async def subscriber(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[Subscriber, str]]:
    sub = Subscriber()
    server = await aiohttp_server(sub.app)
    yield sub, str(server.make_url(""))
    sub.release.set()


IDENTITY = "5eb1c0ffee0dd00d"  # a store's identity (Store.identity)


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    s = Sender(max_connections=8)
    await s.start(IDENTITY)
    yield s
    await s.close()


EVENT = Event(
    {
        "specversion": "1.0",
        "id": "A-1",
        "source": "/shop",
        "type": "com.example.order.created",
        "subject": "Euro €",
    },
    b'{"total": 12}',
    DataKind.JSON,
)


def subscription(base: str, path: str, **changes: object) -> Subscription:
    sub = Subscription(name="billing", sink=base + path)
    return replace(sub, **changes)  # type: ignore[arg-type]


def row(event: Event = EVENT, *, id: int = 17, attempt: int = 1, **changes: object) -> Leased:
    leased = Leased(id, "billing", Kind.SINK, attempt, 1, event, 0.0)
    return replace(leased, **changes)  # type: ignore[arg-type]


async def test_success_sends_the_event_and_the_webhook_headers(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    sub = subscription(
        base,
        "/ok",
        headers=(("X-Team", "billing"),),
        bearer="tok-123",
        signing_secrets=(SECRET,),
    )
    now = time.time()
    result, latency = await sender.send(sub, row(), now)
    assert result == Result(200)
    assert latency >= 0
    [seen] = recorder.seen
    assert seen.body == b'{"total": 12}'
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["ce-id"] == "A-1"
    assert seen.headers["ce-subject"] == "Euro%20%E2%82%AC"
    assert seen.headers["X-Team"] == "billing"
    assert seen.headers["Authorization"] == "Bearer tok-123"
    assert seen.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert seen.headers["webhook-id"] == f"msg_{IDENTITY}_17"
    assert seen.headers["webhook-timestamp"] == str(int(now))
    # The reference library is the oracle for the signature.
    assert Webhook(SECRET).verify(seen.body, seen.headers) == {"total": 12}


async def test_no_secret_no_signature_and_no_bearer_no_authorization(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    result, _ = await sender.send(subscription(base, "/ok"), row(), time.time())
    assert result.status == 200
    headers = recorder.seen[0].headers
    assert "webhook-signature" not in headers
    assert "Authorization" not in headers
    assert headers["webhook-id"] == f"msg_{IDENTITY}_17"


async def test_webhook_id_is_stable_across_retries_of_one_row(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    sub = subscription(base, "/ok", signing_secrets=(SECRET,))
    await sender.send(sub, row(attempt=1), time.time())
    await sender.send(sub, row(attempt=2), time.time() + 1)
    await sender.send(sub, row(id=18), time.time())
    ids = [seen.headers["webhook-id"] for seen in recorder.seen]
    assert ids == [f"msg_{IDENTITY}_17", f"msg_{IDENTITY}_17", f"msg_{IDENTITY}_18"]
    for seen in recorder.seen:
        Webhook(SECRET).verify(seen.body, seen.headers)


async def test_rotation_signs_once_per_secret_and_either_secret_verifies(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    new = "whsec_" + base64.b64encode(b"n" * 32).decode()
    sub = subscription(base, "/ok", signing_secrets=(new, SECRET))
    await sender.send(sub, row(), time.time())
    [seen] = recorder.seen
    assert len(seen.headers["webhook-signature"].split(" ")) == 2
    # The reference library: a subscriber holding either secret accepts the request.
    for secret in (new, SECRET):
        Webhook(secret).verify(seen.body, seen.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(seen.body, seen.headers)


async def test_connections_are_kept_alive(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    for _ in range(3):
        await sender.send(subscription(base, "/ok"), row(), time.time())
    assert len({seen.peer for seen in recorder.seen}) == 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/fail", Result(500)),
        ("/gone", Result(410)),
        ("/busy", Result(429, None, 7.0)),
        ("/huge", Result(202)),
    ],
)
async def test_statuses_are_reported(
    subscriber: tuple[Subscriber, str], sender: Sender, path: str, expected: Result
) -> None:
    recorder, base = subscriber
    result, _ = await sender.send(subscription(base, path), row(), time.time())
    assert result == expected
    assert recorder.paths() == [path]


async def test_redirects_are_not_followed(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    result, _ = await sender.send(subscription(base, "/moved"), row(), time.time())
    assert result == Result(302)
    assert recorder.paths() == ["/moved"]


async def test_a_hanging_subscriber_times_out(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    sub = subscription(base, "/hang", delivery=Delivery(timeout=0.2))
    result, _ = await sender.send(sub, row(), time.time())
    assert result == Result(None, "timeout")
    assert recorder.paths() == ["/hang"]


async def test_a_reset_connection_is_a_failed_attempt(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    _, base = subscriber
    result, _ = await sender.send(subscription(base, "/reset"), row(), time.time())
    assert result.status is None
    assert result.error in ("server disconnected", "connection reset by peer")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_closed_port_is_connection_refused(sender: Sender) -> None:
    sub = Subscription(name="billing", sink=f"http://127.0.0.1:{closed_port()}/hook")
    result, _ = await sender.send(sub, row(), time.time())
    assert result == Result(None, "connection refused")


async def test_errors_do_not_show_secrets_from_the_sink_url(sender: Sender) -> None:
    sub = Subscription(
        name="billing", sink="ftp://user:pw-s3cr3t@example.com/x?access_token=s3cr3t"
    )
    result, _ = await sender.send(sub, row(), time.time())
    assert result.status is None
    assert result.error
    assert "s3cr3t" not in result.error


async def test_an_event_without_data_has_no_content_type(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    bare = Event({k: v for k, v in EVENT.attributes.items() if k != "subject"})
    result, _ = await sender.send(subscription(base, "/ok"), row(bare), time.time())
    assert result.status == 200
    seen = recorder.seen[0]
    assert seen.body == b""
    assert "Content-Type" not in seen.headers


async def test_protocol_headers_win_over_subscription_headers(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    headers = (("Content-Type", "text/plain"), ("webhook-id", "forged"), ("X-Team", "a"))
    await sender.send(subscription(base, "/ok", headers=headers), row(), time.time())
    seen = recorder.seen[0].headers
    assert (seen["Content-Type"], seen["webhook-id"], seen["X-Team"]) == (
        "application/json",
        f"msg_{IDENTITY}_17",
        "a",
    )


async def test_structured_mode(subscriber: tuple[Subscriber, str], sender: Sender) -> None:
    recorder, base = subscriber
    structured = Delivery(mode=Mode.STRUCTURED)
    sub = subscription(base, "/ok", delivery=structured, signing_secrets=(SECRET,))
    await sender.send(sub, row(), time.time())
    seen = recorder.seen[0]
    assert seen.headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    assert orjson.loads(seen.body) == {**EVENT.attributes, "data": {"total": 12}}
    Webhook(SECRET).verify(seen.body, seen.headers)


async def test_dead_letter_rows_go_to_the_dead_letter_sink(
    subscriber: tuple[Subscriber, str], sender: Sender
) -> None:
    recorder, base = subscriber
    sub = subscription(base, "/fail", delivery=Delivery(dead_letter=base + "/ok"))
    info = DeadLetterInfo("exhausted", 500, 8, base + "/fail")
    result, _ = await sender.send(sub, row(id=40, kind=Kind.DEAD_LETTER, dead_letter=info), 0.0)
    assert result == Result(200)
    [seen] = recorder.seen
    assert seen.path == "/ok"
    assert seen.headers["webhook-id"] == f"msg_{IDENTITY}_40"
    body = orjson.loads(seen.body)
    assert (body["deadletterreason"], body["deadletterstatus"]) == ("exhausted", 500)


async def test_send_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        await Sender().send(Subscription(name="b", sink="http://127.0.0.1:1/"), row(), 0.0)
