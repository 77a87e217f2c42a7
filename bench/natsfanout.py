"""NATS JetStream fan-out: the gateway publishing to 3 `nats://` sinks against a bare nats-py
publisher doing the same, in the same run.

    python bench/natsfanout.py [--quick]     (this phase alone; bench/run.py runs it too)
    python bench/natsfanout.py serve PORT SERVER SUBJECT...   (the bare publisher)

  bare_nats_fanout_eps   an aiohttp server that publishes each request's body to 3 JetStream
                         subjects at once (one nats-py connection), waits for the 3 stream acks,
                         then answers 202: the ceiling for a process that turns each event into
                         3 acknowledged publishes
  nats_fanout_eps        `gateway serve` with 3 nats:// subscriptions (binary mode), offered load
                         as fast as it accepts for the phase; events published to all three and
                         acknowledged per second, from the start of the load to the last ack
  nats_fanout_ratio      nats_fanout_eps / bare_nats_fanout_eps

Skipped (no figures) when no NATS server with JetStream answers on 127.0.0.1:4222. (Named
natsfanout, not nats: a script's folder comes first on sys.path and would shadow nats-py.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVER = "nats://127.0.0.1:4222"
SUBSCRIBERS = 3


def nats_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 4222)) == 0


def serve(port: int, server: str, subjects: list[str]) -> None:
    import nats
    from aiohttp import web

    from gateway import eventloop

    async def run() -> None:
        nc = await nats.connect(server)
        js = nc.jetstream()

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            await asyncio.gather(*(js.publish(subject, body) for subject in subjects))
            return web.Response(status=202)

        async def ready(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/events", handle)
        app.router.add_get("/", ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    loop = eventloop.factory()()
    loop.run_until_complete(run())


async def _stream(prefix: str, create: bool) -> int:
    """Create the benchmark's stream (create=True) or count its messages; delete when done."""
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(SERVER)
    try:
        js = nc.jetstream()
        name = prefix.replace(".", "_")
        if create:
            await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"]))
            return 0
        return int((await js.stream_info(name)).state.messages)
    finally:
        await nc.close()


async def _delete(prefix: str) -> None:
    import nats

    nc = await nats.connect(SERVER)
    try:
        await nc.jetstream().delete_stream(prefix.replace(".", "_"))
    finally:
        await nc.close()


def _drained(prefix: str, expected: int, started: float, limit: float = 120) -> float:
    """Seconds from `started` until the stream holds `expected` messages (or stops growing)."""
    last, last_change = -1, time.monotonic()
    while True:
        count = asyncio.run(_stream(prefix, create=False))
        now = time.monotonic()
        if count >= expected:
            return now - started
        if count != last:
            last, last_change = count, now
        elif now - last_change > 10 or now - started > limit:
            return now - started
        time.sleep(0.05)


def nats_phases(phase: float, work: Path) -> dict[str, Any]:
    """bare_nats_fanout_eps, nats_fanout_eps and their ratio; {} without a NATS server."""
    from run import HERE, PY, deployment, free_port, load, process

    if not nats_up():
        return {}
    result: dict[str, Any] = {}
    # Bare publisher.
    prefix = f"benchbare.p{os.getpid()}"
    asyncio.run(_stream(prefix, create=True))
    try:
        subjects = [f"{prefix}.s{i}" for i in range(SUBSCRIBERS)]
        port = free_port()
        with process([PY, str(HERE / "natsfanout.py"), "serve", str(port), SERVER, *subjects],
                     f"http://127.0.0.1:{port}/", work / "bare-nats.log"):
            run = load(f"http://127.0.0.1:{port}/events", phase, prefix="bn")
            accepted = run["statuses"].get("202", 0)
            result["bare_nats_fanout_eps"] = round(accepted / run["seconds"], 1)
    finally:
        asyncio.run(_delete(prefix))
    # The gateway.
    prefix = f"benchgw.p{os.getpid()}"
    asyncio.run(_stream(prefix, create=True))
    try:
        subs = [{"name": f"n{i}", "sink": f"{SERVER}/{prefix}.s{i}",
                 "delivery": {"max_in_flight": 64, "timeout": "10s"}}
                for i in range(SUBSCRIBERS)]
        port = free_port()
        config = deployment(work / "nats", port, subs)
        with process([PY, "-m", "gateway", "serve", "-c", str(config)],
                     f"http://127.0.0.1:{port}/readyz", work / "gw-nats.log"):
            started = time.monotonic()
            run = load(f"http://127.0.0.1:{port}/events", phase, prefix="gn")
            accepted = run["statuses"].get("202", 0)
            seconds = _drained(prefix, accepted * SUBSCRIBERS, started)
            delivered = asyncio.run(_stream(prefix, create=False)) // SUBSCRIBERS
            result["nats_fanout_eps"] = round(delivered / seconds, 1)
    finally:
        asyncio.run(_delete(prefix))
    result["nats_fanout_ratio"] = round(
        result["nats_fanout_eps"] / result["bare_nats_fanout_eps"], 3
    )
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-nats-"))
    try:
        print(json.dumps(nats_phases(5.0 if args.quick else 15.0, work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
