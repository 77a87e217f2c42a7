"""HTTP ingest: the only code that reads `aiohttp.web.Request` on the way in.

`POST /events` takes CloudEvents in binary, structured or batched mode (CE HTTP binding 3) and
answers 202 only after every event of the request is committed. `OPTIONS /events` answers the
abuse-protection handshake (CE webhook spec 4).
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from gateway.errors import Backpressure, GatewayError, PayloadTooLarge
from gateway.event import Event
from gateway.ingest import modes
from gateway.ingest.context import INGEST, Ingest
from gateway.ingest.problems import SENDER
from gateway.ingest.producers import authenticate, authorize, peer_common_name, stamp
from gateway.ops.logs import Throttled
from gateway.redact import clip
from gateway.store.base import NewEvent

log = logging.getLogger("gateway.ingest")

RETRY_AFTER_BACKLOG = "5"
UNMATCHED_TYPES = 100  # distinct `type` labels of gateway_events_unmatched_total

# Refusals caused by the store (503) come in floods during an outage: one line per interval.
refusals = Throttled(log)


def refused(status: int, detail: str) -> None:
    """Log an ingest refusal that is the gateway's fault, not the producer's."""
    if status >= 500:
        refusals.warning("ingest refused with %d: %s", status, detail)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def accept(
    gw: Ingest, events: list[Event], *, batch: bool, producer: str | None = None
) -> web.Response:
    """Validate, route and durably store the events of one request; all or nothing."""
    routed: list[NewEvent] = []
    for index, event in enumerate(events):
        try:
            gw.registry.validate(event, gw.config.unknown_types)
        except GatewayError as error:
            raise (error.at(index) if batch else error) from None
        subscriptions = gw.router.route(event)
        if not subscriptions:
            _unmatched(gw, event)
        routed.append(NewEvent(event, subscriptions, producer=producer))
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


async def post_events(request: web.Request) -> web.Response:
    gw = request.app[INGEST]
    config = gw.config
    try:
        producer = authenticate(
            config.producers, request.headers, request.query, _common_name(request)
        )
        if producer is not None:
            request[SENDER] = f"producer {producer.name}"
        if await gw.store.pending() >= config.dispatch.backlog_high_water:
            raise Backpressure(
                "the delivery backlog is over its high-water mark; retry later",
                headers={"Retry-After": RETRY_AFTER_BACKLOG},
            )
        body = await read_body(request, config.server.max_body_bytes)
        mode, events = modes.parse(request.headers, body)
        batch = mode is modes.ContentMode.BATCH
        for index, event in enumerate(events):
            try:
                authorize(producer, event)
            except GatewayError as error:
                raise (error.at(index) if batch else error) from None
        events = [stamp(event, config.producer_attribute, producer) for event in events]
        name = producer.name if producer else None
        return await accept(gw, events, batch=batch, producer=name)
    except GatewayError as error:
        gw.metrics.inc("gateway_ingest_rejected_total", status=str(error.status))
        refused(error.status, error.detail)
        raise


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
    app.router.add_post("/events", post_events)
    app.router.add_route("OPTIONS", "/events", options_events)
