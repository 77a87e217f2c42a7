"""The baselines and the subscriber for the benchmark, each run as its own process.

  bare PORT              reads the body, answers 202 (the ceiling for ingest)
  relay PORT SINK        reads the body, POSTs it to SINK, then answers 202 (the ceiling for a
                         process that both receives and forwards each event)
  fanout PORT SINK...    reads the body, POSTs it to every SINK at once (one shared keep-alive
                         client), then answers 202 (the ceiling for fanning each event out)
  subscriber PORT        answers 200 and records arrivals, also per first path segment;
                         POST /slow answers after 5 s; GET /stats, POST /reset

Every server runs on the event loop `gateway serve` runs on (uvloop where installed), so a
baseline and the gateway it is compared with differ only in what the gateway does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from gateway import eventloop


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


def fanout(sinks: list[str]) -> web.Application:
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        yield
        await app[session_key].close()

    async def forward(sink: str, body: bytes) -> None:
        async with app[session_key].post(
            sink, data=body, headers={"Content-Type": "application/cloudevents+json"}
        ) as resp:
            await resp.read()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.gather(*(forward(sink, body) for sink in sinks))
        return web.Response(status=202)

    app.cleanup_ctx.append(session)
    app.router.add_post("/events", handle)
    return app


def subscriber() -> web.Application:
    latencies: list[float] = []
    count = [0]
    # Per first path segment: arrivals, the time of the last one, ingest-to-arrival latencies.
    paths: dict[str, dict[str, Any]] = {}

    def record(request: web.Request, body: bytes = b"") -> None:
        now = time.time()
        # A batch (CE HTTP binding 3.3) counts its events.
        batched = request.content_type == "application/cloudevents-batch+json"
        events = len(json.loads(body)) if batched else 1
        count[0] += events
        path = paths.setdefault(request.path.split("/")[1],
                                {"count": 0, "last": 0.0, "latencies": []})
        path["count"] += events
        path["last"] = now
        sent = request.headers.get("ce-benchts")
        if sent:
            latency = (now - float(sent)) * 1000
            latencies.append(latency)
            path["latencies"].append(latency)

    async def handle(request: web.Request) -> web.Response:
        record(request, await request.read())
        return web.Response(status=200)

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(5)
        return web.Response(status=200)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"count": count[0], "latencies": latencies, "paths": paths})

    async def reset(request: web.Request) -> web.Response:
        count[0] = 0
        latencies.clear()
        paths.clear()
        return web.Response(status=204)

    async def stall(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(3600)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/stall", stall)
    app.router.add_post("/slow", slow)
    app.router.add_post("/{tail:.*}", handle)
    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "relay":
        built = relay(sys.argv[3])
    elif kind == "fanout":
        built = fanout(sys.argv[3:])
    else:
        built = {"bare": bare, "subscriber": subscriber}[kind]()
    web.run_app(built, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=eventloop.factory()())
