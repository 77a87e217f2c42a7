"""`gateway sink`: a development receiver that prints every request the gateway delivers.

It listens on 127.0.0.1 only, one listener per port, and prints each request as one block:
where it arrived, its content mode, the CloudEvents attributes, the data pretty-printed and the
Standard Webhooks signature verdict; then it answers the chosen status, so that retries can be
watched too. Parsing is the gateway's own (`gateway.ingest.modes`); signatures are checked with
the `standardwebhooks` package, an implementation independent of the gateway's signer.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.errors import GatewayError
from gateway.event import REQUIRED, DataKind, Event, canonical
from gateway.ingest.modes import ContentMode, parse

HOST = "127.0.0.1"
# The ports of the example deployment's subscribers (config/subscriptions/).
DEFAULT_PORTS = (9001, 9002, 9003)
_BINARY_PREVIEW = 48  # base64 characters shown of binary data
_INDENT = "    "


@dataclass(frozen=True, slots=True)
class Settings:
    ports: tuple[int, ...] = DEFAULT_PORTS
    status: int = 200
    secret: str | None = None


def check_secret(secret: str) -> None:
    """Raise ValueError unless `secret` is a usable Standard Webhooks secret."""
    if not secret.startswith("whsec_"):
        raise ValueError("a signing secret starts with whsec_")
    try:
        Webhook(secret)
    except Exception as exc:  # the package raises binascii.Error or its own errors
        raise ValueError("a signing secret is whsec_ followed by base64") from exc


def check_status(code: int) -> None:
    """Raise ValueError unless `code` can answer a request (a final status, RFC 9110 15)."""
    if not 200 <= code <= 599:
        raise ValueError("the answer must be a status from 200 to 599")


def signature(headers: Mapping[str, str], body: bytes, secret: str | None) -> str:
    """`verified`, `INVALID (why)`, `not signed`, or why it could not be checked."""
    if "webhook-signature" not in headers:
        return "not signed"
    if secret is None:
        return "signed (give --secret to verify)"
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        return f"INVALID ({exc})"
    except UnicodeDecodeError:
        return "not checked (the body is not UTF-8 text)"
    except ValueError as exc:  # malformed signature entries or base64
        return f"INVALID (malformed: {exc})"
    return "verified"


def _data(event: Event) -> list[str]:
    if event.kind is DataKind.NONE or event.data is None:
        return ["data: (none)"]
    if event.kind is DataKind.JSON:
        pretty = orjson.dumps(orjson.loads(event.data), option=orjson.OPT_INDENT_2).decode()
        return ["data:", *(_INDENT + line for line in pretty.splitlines())]
    if event.kind is DataKind.TEXT:
        return ["data:", *(_INDENT + line for line in event.data.decode("utf-8").splitlines())]
    encoded = base64.b64encode(event.data).decode()
    more = "..." if len(encoded) > _BINARY_PREVIEW else ""
    size = len(event.data)
    return [f"data: {size} bytes of binary data, base64 {encoded[:_BINARY_PREVIEW]}{more}"]


def _event(event: Event) -> list[str]:
    names = [*REQUIRED, *(n for n in event.attributes if n not in REQUIRED)]
    width = max(len(n) for n in names)
    lines = [
        f"{name.ljust(width)}  {canonical(event.attributes[name])}"
        for name in names if name in event.attributes
    ]
    return lines + _data(event)


def describe(
    port: int, method: str, path: str, headers: CIMultiDictProxy[str] | CIMultiDict[str],
    body: bytes, settings: Settings,
) -> str:
    """The block printed for one request (without a trailing newline)."""
    at = datetime.now().strftime("%H:%M:%S")
    head = f"--- {at} {method} {HOST}:{port}{path}"
    if method == "OPTIONS":
        origin = headers.get("WebHook-Request-Origin", "")
        return f"{head}  webhook handshake from {origin or '(no origin)'}; allowed"
    verdict = signature({k.lower(): v for k, v in headers.items()}, body, settings.secret)
    lines: list[str] = []
    try:
        mode, events = parse(headers, body)
    except GatewayError as exc:
        summary = "not a CloudEvent"
        lines.append(f"not a CloudEvent: {exc.detail}")
        lines.append(f"body: {len(body)} bytes, Content-Type {headers.get('Content-Type')!r}")
    else:
        summary = mode.value
        if mode is ContentMode.BATCH:
            summary = f"batch of {len(events)}"
        for index, event in enumerate(events):
            if mode is ContentMode.BATCH:
                lines.append(f"[{index}]")
            lines.extend(_event(event))
    webhook_id = headers.get("webhook-id")
    if webhook_id:
        lines.insert(0, f"webhook-id: {webhook_id}")
    head += f"  {summary}  signature: {verdict}  -> {settings.status}"
    return "\n".join([head, *(_INDENT + line for line in lines)])


class Sink:
    """The HTTP side: every request is printed, then answered with `settings.status`."""

    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.settings, self.out = settings, out
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = int(sockname[1]) if sockname else (request.url.port or 0)
        block = describe(port, request.method, request.path_qs, request.headers, body,
                         self.settings)
        # One write per request, flushed: the output is often read through a pipe.
        self.out.write(block + "\n")
        self.out.flush()
        if request.method == "OPTIONS" and "WebHook-Request-Origin" in request.headers:
            # CE webhook 4.2: the abuse-protection handshake, answered so delivery can start.
            return web.Response(headers={
                "WebHook-Allowed-Origin": request.headers["WebHook-Request-Origin"],
                "WebHook-Allowed-Rate": "*",
                "Allow": "POST, OPTIONS",
            })
        return web.Response(status=self.settings.status)


async def serve(settings: Settings, out: TextIO, stop: asyncio.Event | None = None) -> None:
    """Listen on every port until `stop` is set (or SIGINT/SIGTERM when none is given)."""
    sink = Sink(settings, out)
    runner = web.AppRunner(sink.app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        for port in settings.ports:
            await web.TCPSite(runner, HOST, port, reuse_address=True).start()
        urls = ", ".join(f"http://{HOST}:{port}" for port in settings.ports)
        secret = "with a secret" if settings.secret else "no --secret"
        out.write(f"gateway sink listening on {urls}; answering {settings.status}; {secret}\n")
        out.flush()
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(settings: Settings) -> int:
    """Run until interrupted; 1 when a port cannot be listened on."""
    try:
        asyncio.run(serve(settings, sys.stdout))
    except OSError as exc:
        print(f"gateway sink: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
