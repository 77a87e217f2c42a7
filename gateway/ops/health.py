"""Liveness, readiness and metrics endpoints.

`/readyz` is 503 while starting or stopping, and while the store's write path is not ready
(`Store.ready`: recent writes failed, a commit is stuck, or writes are blocked), answered within
the store's short readiness deadline.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import StoreUnavailable
from gateway.runtime import GATEWAY


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    if not gw.ready:
        return web.json_response(
            {"status": "not ready", "reason": "starting or stopping"}, status=503
        )
    try:
        await gw.store.ready()
    except StoreUnavailable as exc:
        return web.json_response({"status": "not ready", "reason": exc.detail}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[GATEWAY].metrics
    await metrics.refresh()
    text = metrics.render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
