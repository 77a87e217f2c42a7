"""HTTP ingest: the only code that reads `aiohttp.web.Request` on the way in.

`POST /events` takes CloudEvents in binary, structured or batched mode (CE HTTP binding 3) and
answers 202 only after every event of the request is committed. `OPTIONS /events` answers the
abuse-protection handshake (CE webhook spec 4).

Bodies over `OFFLOAD_BYTES` are parsed and their data validated in one worker thread, one at a
time, so that a stream of large (or hostile) bodies cannot hold the event loop from the small
requests of other producers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import orjson
from aiohttp import web

from gateway.attributes import check_sizes
from gateway.errors import (
    Backpressure,
    GatewayError,
    InvalidEvent,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.event import Event
from gateway.ingest import heavy, modes
from gateway.ingest.context import INGEST, Ingest
from gateway.ingest.problems import SENDER
from gateway.ingest.producers import authenticate, authorize, peer_common_name, stamp
from gateway.ops.logs import Throttled
from gateway.redact import clip
from gateway.routing import ordering
from gateway.store.base import NewEvent

log = logging.getLogger("gateway.ingest")

RETRY_AFTER_BACKLOG = "5"
UNMATCHED_TYPES = 100  # distinct `type` labels of gateway_events_unmatched_total

# Refusals caused by the store (503) come in floods during an outage: one line per interval.
refusals = Throttled(log)
Handler = Callable[[web.Request], Awaitable[web.Response]]


def guarded(handler: Handler) -> Handler:
    """The guard of every ingest handler (`/events` and sources): each refusal is counted,
    and logged when it is the gateway's fault, not the sender's."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except GatewayError as error:
            metrics = request.app[INGEST].metrics
            metrics.inc("gateway_ingest_rejected_total", status=str(error.status))
            if error.status >= 500:
                refusals.warning("ingest refused with %d: %s", error.status, error.detail)
            raise

    return run


async def check_backlog(gw: Ingest) -> None:
    """Backpressure: refuse new events (429) while the delivery backlog is over its mark."""
    if await gw.store.pending() >= gw.config.dispatch.backlog_high_water:
        raise Backpressure(
            "the delivery backlog is over its high-water mark; retry later",
            headers={"Retry-After": RETRY_AFTER_BACKLOG},
        )

# Parsing 1 MB of JSON into Python objects takes 10-40 ms of CPU; below this size it takes
# well under a millisecond and stays on the event loop. Larger bodies of /events go to the
# worker process (`heavy.py`); the Python objects of large source bodies, which the templates
# read, are made in a thread.
OFFLOAD_BYTES = heavy.PROCESS_BYTES
THREAD = web.AppKey("ingest_thread", ThreadPoolExecutor)
HEAVY = web.AppKey("ingest_process", heavy.HeavyWork)
_T = TypeVar("_T")


async def offload(app: web.Application, size: int, work: Callable[..., _T], *args: object) -> _T:
    """`work(*args)` on the event loop when `size` is small, else in the ingest thread."""
    if size <= OFFLOAD_BYTES:
        return work(*args)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(app[THREAD], functools.partial(work, *args))


async def _workers(app: web.Application) -> AsyncIterator[None]:
    # One thread and one process: large bodies wait for each other, not the loop.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-ingest-heavy")
    app[THREAD] = pool
    config = app[INGEST].config
    process = heavy.HeavyWork(config.schemas, config.unknown_types)
    process.start()
    app[HEAVY] = process
    yield
    process.close()
    pool.shutdown(wait=True, cancel_futures=True)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, decoded per its Content-Encoding, refusing more than `limit` bytes
    (received or decoded) without reading them all."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; the limit is {limit}")
    decoder = _decoder(request.headers.get("Content-Encoding", ""))
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await request.content.readany()
        except web.RequestPayloadError as exc:  # e.g. broken chunked framing
            raise InvalidEvent("the body cannot be read: it is malformed") from exc
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    return body if decoder is None else _decode(decoder, body, limit)


# RFC 9110 8.4.1: the codings the gateway decodes (aiohttp's own decoding is switched off in
# `gateway.app` so that every refusal is answered here, as problem+json).
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 0}


def _decoder(header: str) -> str | None:
    coding = header.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding not in _ZLIB_WBITS:
        # RFC 9110 15.5.16: 415 for a content coding the server does not support.
        raise UnsupportedMediaType(
            f"Content-Encoding {header[:40]!r} is not supported; use gzip or deflate, or none"
        )
    return coding


def _decode(coding: str, body: bytes, limit: int) -> bytes:
    wbits = _ZLIB_WBITS[coding]
    if not wbits:
        # "deflate" is the zlib format (RFC 1950); some clients send raw deflate (RFC 1951).
        wbits = zlib.MAX_WBITS if body[:1] and body[0] & 0x0F == 8 else -zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidEvent(
            f"the body cannot be read: it is not valid {coding} (Content-Encoding)"
        ) from exc
    if len(out) > limit or decompressor.unconsumed_tail:
        raise PayloadTooLarge(f"the decoded body is over the limit of {limit} bytes")
    if body and not decompressor.eof:
        raise InvalidEvent(f"the body cannot be read: its {coding} stream is truncated")
    if decompressor.unused_data:
        raise InvalidEvent(f"the body cannot be read: data follows its {coding} stream")
    return out


async def accept(
    app: web.Application,
    events: list[Event],
    *,
    batch: bool,
    producer: str | None = None,
    verdicts: Sequence[heavy.Verdict] | None = None,
) -> web.Response:
    """Validate, route and durably store the events of one request; all or nothing.
    `verdicts`: the schema verdicts the worker process already reached for these events."""
    gw = app[INGEST]
    routed: list[NewEvent] = []
    limits = gw.config.limits
    for index, event in enumerate(events):
        try:
            # What is accepted must fit in a binary-mode delivery's headers: an attribute
            # that no binary-mode subscriber would take is refused here, not dead-lettered.
            check_sizes(event.attributes, limits.max_attribute_bytes, limits.max_attributes_bytes)
            if verdicts is not None:
                heavy.raise_for(verdicts[index])
            elif len(event.data or b"") > OFFLOAD_BYTES:
                await app[HEAVY].validate(event)
            else:
                gw.registry.validate(event, gw.config.unknown_types)
        except GatewayError as error:
            raise (error.at(index) if batch else error) from None
        subscriptions = gw.router.route(event)
        if not subscriptions:
            _unmatched(gw, event)
        keys = ordering.keys(gw.router.ordering, event, subscriptions)  # CONTRACT 5
        routed.append(NewEvent(event, subscriptions, keys, producer=producer))
    config = gw.config
    duplicates = await gw.store.append(routed, gw.clock(), config.dedupe_window)
    fresh = sum(1 for d in duplicates if not d)
    gw.metrics.inc("gateway_events_accepted_total", fresh)
    if fresh != len(events):
        gw.metrics.inc("gateway_events_duplicate_total", len(events) - fresh)
    body = {
        "ids": [e.id for e in events],
        "duplicates": [e.id for e, dup in zip(events, duplicates, strict=True) if dup],
    }
    return web.Response(status=202, body=orjson.dumps(body), content_type="application/json")


def _unmatched(gw: Ingest, event: Event) -> None:
    """An event no subscription takes is stored (replay may want it) but goes nowhere: say so
    at DEBUG, and count it per type (types past the first UNMATCHED_TYPES share one label, so a
    producer cannot grow the metric without bound)."""
    log.debug("event %s from %s (type %s) matched no subscription", clip(event.id),
              clip(event.source), clip(event.type))
    label = event.type
    if label not in gw.unmatched_types:
        if len(gw.unmatched_types) >= UNMATCHED_TYPES:
            label = "(other)"
        else:
            gw.unmatched_types.add(label)
    gw.metrics.inc("gateway_events_unmatched_total", type=label)


def _common_name(request: web.Request) -> str | None:
    """The common name of the client certificate, when mutual TLS verified one."""
    if request.transport is None:
        return None
    ssl_object = request.transport.get_extra_info("ssl_object")
    return None if ssl_object is None else peer_common_name(ssl_object.getpeercert())


@guarded
async def post_events(request: web.Request) -> web.Response:
    gw = request.app[INGEST]
    config = gw.config
    producer = authenticate(config.producers, request.headers, request.query, _common_name(request))
    if producer is not None:
        request[SENDER] = f"producer {producer.name}"
    await check_backlog(gw)
    body = await read_body(request, config.server.max_body_bytes)
    verdicts: list[heavy.Verdict] | None = None
    if len(body) > OFFLOAD_BYTES:
        mode, events, verdicts = await request.app[HEAVY].parse(request.headers, body)
    else:
        mode, events = modes.parse(request.headers, body)
    batch = mode is modes.ContentMode.BATCH
    for index, event in enumerate(events):
        try:
            authorize(producer, event)
        except GatewayError as error:
            raise (error.at(index) if batch else error) from None
    events = [stamp(event, config.producer_attribute, producer) for event in events]
    name = producer.name if producer else None
    return await accept(request.app, events, batch=batch, producer=name, verdicts=verdicts)


async def options_events(request: web.Request) -> web.Response:
    """CE webhook spec 4.2: grant delivery to any origin that asks (auth is separate)."""
    headers = {"Allow": "POST, OPTIONS"}
    origin = request.headers.get("WebHook-Request-Origin")
    if origin:
        headers["WebHook-Allowed-Origin"] = origin
        # 4.2: MUST answer WebHook-Allowed-Rate when a rate was requested; "*" means unlimited.
        headers["WebHook-Allowed-Rate"] = "*"
    return web.Response(status=200, headers=headers)


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_workers)
    app.router.add_post("/events", post_events)
    app.router.add_route("OPTIONS", "/events", options_events)
