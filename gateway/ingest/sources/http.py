"""HTTP ingest for any-format sources: `POST /sources/<name>` (or the source's `path`).

Order: read the body (size limit, 413) -> verify on the raw bytes (401, nothing stored, only
the source name and the reason logged) -> read the body's format (400) -> a provider's URL
check, answered without an event -> backpressure (429) -> normalize (422/400) -> the same
validation, routing and storage as `/events`, answered 202 after the commit. `OPTIONS` answers
the CE webhook handshake (CE webhook spec 4).
"""

from __future__ import annotations

import functools
import uuid

import orjson
from aiohttp import web

from gateway.config.model import Source
from gateway.errors import NotFound
from gateway.ingest.context import INGEST
from gateway.ingest.http import (
    Handler,
    accept,
    check_backlog,
    guarded,
    offload,
    options_events,
    read_body,
)
from gateway.ingest.problems import SENDER
from gateway.ingest.sources import bodies, verify
from gateway.ingest.sources.mapping import normalize
from gateway.sources import presets
from gateway.sources.templates import Inputs, first_values


async def _post(request: web.Request, source: Source) -> web.Response:
    gw = request.app[INGEST]
    config = gw.config
    request[SENDER] = f"source {source.name}"
    body = await read_body(request, config.server.max_body_bytes)
    headers = first_values(request.headers.items(), lower=True)
    query = first_values(request.query.items(), lower=False)
    verify.check(source.verify, body, headers, query, gw.clock())
    content_type = bodies.request_content_type(request.headers.items())
    parsed = await offload(
        request.app, len(body), bodies.decode, content_type, body, source.payload_field
    )
    answer = presets.handshake(source.handshake, parsed.view)
    if answer is not None:
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
    await check_backlog(gw)
    event = normalize(source, Inputs(headers, query, parsed.view), parsed, _mint)
    return await accept(request.app, [event], batch=False, producer=None)


def _mint() -> str:
    return str(uuid.uuid4())


def _handler(source: Source) -> Handler:
    return guarded(functools.partial(_post, source=source))


async def unknown_source(request: web.Request) -> web.Response:
    raise NotFound(f"no source named {request.match_info['name']!r} is configured")


def add_routes(app: web.Application) -> None:
    """A POST and OPTIONS route per configured source; other `/sources/<name>` are 404."""
    for source in app[INGEST].config.sources:
        app.router.add_post(source.path, _handler(source))
        app.router.add_route("OPTIONS", source.path, options_events)
    app.router.add_post("/sources/{name}", unknown_source)
    app.router.add_route("OPTIONS", "/sources/{name}", unknown_source)
