"""`gateway send`: publish one CloudEvent to the gateway a config describes, and print the answer.

The event is built and checked with the gateway's own parser and rendered by its own renderer,
so what is sent is exactly what a subscriber in that mode would receive. Exit codes: 0 when
the gateway answers 202, 1 for any other answer or unusable input, 2 when it cannot be reached.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson

from gateway.config.model import Config
from gateway.delivery import render
from gateway.errors import GatewayError
from gateway.event import SPECVERSION, Event
from gateway.ingest.modes import parse_structured

UNREACHABLE = 2
_TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass(frozen=True, slots=True)
class Options:
    type: str
    source: str
    data: str | None = None  # JSON text, or @FILE
    id: str | None = None  # None: a fresh uuid4
    mode: str = "binary"  # binary | structured
    token: str | None = None  # None: the config's first producer's token
    url: str | None = None  # None: the config's server address


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    token: str | None = field(default=None, repr=False)


def _host(host: str) -> str:
    # A wildcard listen address is reached on loopback; an IPv6 literal goes in brackets.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def target(config: Config | None, options: Options) -> Target:
    """Where to POST and with which token: the options first, then the config."""
    token = options.token
    if token is None and config is not None:
        token = next((p.tokens[0] for p in config.producers if p.tokens), None)
    if options.url is not None:
        url = options.url
        if urlsplit(url).path in ("", "/"):
            url = url.rstrip("/") + "/events"
        return Target(url, token)
    if config is None:
        raise ValueError("no config and no --url: nothing names the gateway")
    server = config.server
    scheme = "https" if server.tls is not None else "http"
    return Target(f"{scheme}://{_host(server.host)}:{server.port}/events", token)


def _data(text: str) -> object:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"--data {text}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"--data {text}: not UTF-8 text") from exc
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--data is not JSON: {exc}") from exc


def event(options: Options) -> Event:
    """The event to publish; ValueError or GatewayError (400) when it is not a valid one."""
    raw: dict[str, object] = {
        "specversion": SPECVERSION,
        "id": options.id if options.id is not None else str(uuid.uuid4()),
        "source": options.source,
        "type": options.type,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if options.data is not None:
        raw["datacontenttype"] = "application/json"
        raw["data"] = _data(options.data)
    return parse_structured(raw)


def request(evt: Event, mode: str) -> render.Request:
    """The HTTP request carrying `evt` in `mode` (CE HTTP binding 3.1 or 3.2)."""
    return render.structured(evt) if mode == "structured" else render.binary(evt)


async def post(where: Target, req: render.Request) -> tuple[int, str, bytes]:
    """POST once; the status, reason and body. aiohttp.ClientError or OSError when unreachable."""
    headers = dict(req.headers)
    if where.token is not None:
        headers["Authorization"] = f"Bearer {where.token}"
    # https is verified against the default trust store (SSL_CERT_FILE is honoured).
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as http,
        http.post(where.url, data=req.body, headers=headers) as resp,
    ):
        return resp.status, resp.reason or "", await resp.read()


def _show(status: int, reason: str, body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(orjson.JSONDecodeError):
        text = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    return f"{status} {reason}\n{text}".rstrip()


async def send(config: Config | None, options: Options) -> int:
    """Publish and print the answer; the exit code (module docstring)."""
    try:
        where = target(config, options)
        req = request(event(options), options.mode)
    except ValueError as exc:
        print(f"gateway send: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"gateway send: not a valid CloudEvent: {exc.detail}", file=sys.stderr)
        return 1
    try:
        status, reason, body = await post(where, req)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"gateway send: cannot reach the gateway at {where.url}: {exc or type(exc).__name__}",
              file=sys.stderr)
        return UNREACHABLE
    print(_show(status, reason, body), flush=True)
    return 0 if status == 202 else 1
