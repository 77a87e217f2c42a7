"""Builds the aiohttp Application: routes, the problem middleware, start and stop order.

Start: store -> sender -> dispatcher, then ready. Stop (reverse, after the server has stopped
accepting and in-flight ingest requests have finished): dispatcher drains within the grace
period -> sender -> store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.admin import api as admin_api
from gateway.admin.control import Control, Loader
from gateway.config.model import Admin, Config, ordering_attributes
from gateway.config.sections import loopback
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.sender import Sender
from gateway.ingest import http as ingest_http
from gateway.ingest.context import INGEST, Ingest
from gateway.ingest.problems import problems
from gateway.ingest.sources import http as sources_http
from gateway.ops import health, tracing
from gateway.ops.metrics import Metrics, standard
from gateway.routing.router import Router
from gateway.runtime import GATEWAY, Gateway
from gateway.schemas import SchemaRegistry
from gateway.store import open_store
from gateway.store.base import Store

log = logging.getLogger("gateway")


def assemble(
    config: Config,
    registry: SchemaRegistry,
    *,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
) -> Gateway:
    """Wire the parts of one gateway (nothing is started yet)."""
    store = store if store is not None else open_store(config.store_url or config.store)
    metrics = standard()
    store.on_commit(lambda seconds: metrics.observe("gateway_store_commit_seconds", seconds))
    sender = Sender(
        max_connections=config.dispatch.max_in_flight,
        egress=config.egress,
        origin=config.origin or "localhost",
    )
    dispatcher = Dispatcher(
        store,
        sender,
        config.subscriptions,
        config.dispatch,
        retention=config.retention,
        dedupe_window=config.dedupe_window,
        metrics=metrics,
        clock=clock,
    )
    metrics.gauge(
        "gateway_deliveries_in_flight", "Delivery attempts in flight", lambda: dispatcher.in_flight
    )
    router = Router(config.subscriptions, ordering_attributes(config.subscriptions))
    return Gateway(config, registry, store, dispatcher, sender, metrics, router, clock)


async def _summarize(gw: Gateway) -> None:
    """One line at start: what this gateway will deliver to, and what is waiting."""
    paused = await gw.store.paused()
    names = {sub.name for sub in gw.config.subscriptions}
    log.info(
        "ready: %d subscriptions (%d paused), %d pending deliveries",
        len(names),
        len(names & set(paused)),
        await gw.store.pending(),
    )


def build(gw: Gateway) -> web.Application:
    # Bodies are decoded by `ingest.http.read_body`, which answers every bad one itself.
    app = web.Application(
        middlewares=[*tracing.middlewares(), problems], handler_args={"auto_decompress": False}
    )
    app[GATEWAY] = gw
    app[INGEST] = Ingest(gw.config, gw.registry, gw.store, gw.router, gw.metrics, gw.clock)
    ingest_http.add_routes(app)
    sources_http.add_routes(app)
    health.add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        gw.store.on_wakeup(gw.dispatcher.wake)
        await gw.store.open()
        await gw.sender.start(gw.store.identity)
        await gw.dispatcher.start()
        gw.ready = True
        await _summarize(gw)
        server = gw.config.server
        if not loopback(server.host) and not gw.config.producers and server.tls is None:
            log.warning(
                "listening on %s without producers or TLS: anyone who reaches the port can publish",
                server.host,
            )
        yield
        gw.ready = False
        await gw.dispatcher.stop(gw.config.server.shutdown_grace)
        await gw.sender.close()
        await gw.store.close()

    app.cleanup_ctx.append(lifecycle)
    return app


# -- operating (CONTRACT 6) ---------------------------------------------------------------------

SUBSCRIPTION_GAUGES = (
    "gateway_backlog", "gateway_oldest_pending_seconds", "gateway_breaker_open",
    "gateway_subscription_paused",
)  # fmt: skip


def operate(gw: Gateway, app: web.Application, load: Loader) -> Control:
    """The operator's handle on a built gateway (reload, pause, ...), and the gauges read from
    the store at each scrape of /metrics."""
    control = Control(gw, app[INGEST], load)

    async def gauges(metrics: Metrics) -> None:
        subscriptions = await control.subscriptions()
        for name in SUBSCRIPTION_GAUGES:
            metrics.clear(name)
        for sub in subscriptions:
            label = sub["name"]
            metrics.set("gateway_backlog", sub["backlog"], subscription=label)
            metrics.set("gateway_oldest_pending_seconds", sub["oldest_pending_seconds"],
                        subscription=label)  # fmt: skip
            metrics.set("gateway_breaker_open", sub["state"] == "breaker-open", subscription=label)
            metrics.set("gateway_subscription_paused", sub["state"] == "paused",
                        subscription=label)  # fmt: skip
        metrics.set("gateway_config_generation", control.generation)
        metrics.set("gateway_config_reload_failed", bool(control.problems))

    gw.metrics.on_refresh(gauges)

    async def heartbeat(app: web.Application) -> AsyncIterator[None]:
        # After the store opened (cleanup contexts run in order), stopped before it closes.
        task = asyncio.create_task(control.keep_reporting(), name="replica-heartbeat")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(heartbeat)
    return control


def build_admin(control: Control, admin: Admin) -> web.Application:
    """The admin API's application, served on `admin.host:admin.port`."""
    return admin_api.application(control, admin.token)
