"""The baselines and the subscriber for the benchmark, each run as its own process.

  bare PORT              reads the body, answers 202 (the ceiling for ingest)
  relay PORT SINK        reads the body, POSTs it to SINK, then answers 202 (the ceiling for a
                         process that both receives and forwards each event)
  subscriber PORT        answers 200 and records arrivals; GET /stats, POST /reset
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiohttp import web


def bare() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202, body=b'{"ids":[],"duplicates":[]}',
                            content_type="application/json")

    app = web.Application()
    app.router.add_post("/events", handle)
    return app


def relay(sink: str) -> web.Application:
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        yield
        await app[session_key].close()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        async with app[session_key].post(
            sink, data=body, headers={"Content-Type": "application/cloudevents+json"}
        ) as resp:
            await resp.read()
        return web.Response(status=202)

    app.cleanup_ctx.append(session)
    app.router.add_post("/events", handle)
    return app


def subscriber() -> web.Application:
    latencies: list[float] = []
    count = [0]

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        count[0] += 1
        sent = request.headers.get("ce-benchts")
        if sent:
            latencies.append((time.time() - float(sent)) * 1000)
        return web.Response(status=200)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"count": count[0], "latencies": latencies})

    async def reset(request: web.Request) -> web.Response:
        count[0] = 0
        latencies.clear()
        return web.Response(status=204)

    async def stall(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(3600)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/stall", stall)
    app.router.add_post("/{tail:.*}", handle)
    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    app = {"bare": bare, "subscriber": subscriber}.get(kind)
    built = relay(sys.argv[3]) if kind == "relay" else app()  # type: ignore[misc]
    web.run_app(built, host="127.0.0.1", port=port, access_log=None, print=None)
