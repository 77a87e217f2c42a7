"""The gateway benchmark: ratios against bare aiohttp baselines measured in the same run.

    python bench/run.py --quick      (under a minute; the last line printed is one JSON object)
    python bench/run.py              (longer phases, steadier figures)
    python bench/run.py --store postgresql://postgres@127.0.0.1/test   (adds the pg_* phases)

Phases, each against fresh processes and a fresh store:
  bare_ingest_rps   a bare aiohttp server that reads the body and answers 202
  ingest_eps        `gateway serve`: 1 KB structured events, schema-validated, committed and routed
                    to 3 subscriptions (their sinks stall, so delivery work stays out of the figure)
  bare_relay_eps    a bare aiohttp server that forwards each request to the subscriber first
  e2e_eps           events/s arriving at the subscriber through the gateway (one subscription),
                    from the start of the load to the last arrival once the backlog drained
  latency_*_ms      ingest -> subscriber arrival at a fixed offered load of 500 events/s
  rss_mb            the gateway process's peak resident memory over the run
  hostile_*         a good producer's latency while 8 clients send poison (see bench/hostile.py)
  fanout phases     three live subscribers per event, against a bare fan-out server, with wrk
                    when installed: see bench/fanout.py
  dead_sink_*       one of 3 subscriptions down with a backlog: see bench/deadsink.py
  nats_fanout_eps   three nats:// (JetStream) sinks per event, against a bare nats-py
                    publisher: see bench/natsfanout.py (skipped without a NATS server)
With --store postgresql://..., the ingest and e2e phases again on the PostgreSQL store, each in
a fresh schema: with one replica (pg_ingest_eps_1, pg_e2e_eps_1) and with two replicas on one
database, the load split over both (pg_ingest_eps_2, pg_e2e_eps_2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://bench.example/order.created/v1",
    "type": "object",
    "required": ["order_id", "customer", "amount", "currency", "items"],
    "properties": {
        "order_id": {"type": "string", "minLength": 1},
        "customer": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "items": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["sku", "quantity", "price"],
            "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer",
                           "minimum": 1}, "price": {"type": "integer", "minimum": 0}}}},
        "note": {"type": "string"},
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(args: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, cwd=ROOT)
    try:
        wait_http(ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def subscriber_in_workspace() -> Iterator[tuple[str, Path]]:
    """A scratch folder and the benchmark subscriber (bench/servers.py) running in it: its URL
    and the folder, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        with process([PY, str(HERE / "servers.py"), "subscriber", str(port)], f"{url}/stats",
                     work / "subscriber.log"):
            yield url, work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(url: str, duration: float, concurrency: int = 32, rate: float = 0.0,
         prefix: str = "e", keys: int = 0) -> dict[str, Any]:
    args = [PY, str(HERE / "loadgen.py"), url, "--duration", str(duration),
            "--concurrency", str(concurrency), "--prefix", prefix, "--keys", str(keys)]
    if rate:
        args += ["--rate", str(rate)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_split(urls: list[str], duration: float, concurrency: int, prefix: str) -> dict[str, Any]:
    """One load generator per URL at once, the connections shared out; the sum of their runs."""
    procs = [
        subprocess.Popen(
            [PY, str(HERE / "loadgen.py"), url, "--duration", str(duration), "--concurrency",
             str(concurrency // len(urls)), "--prefix", f"{prefix}{index}"],
            stdout=subprocess.PIPE, text=True,
        )
        for index, url in enumerate(urls)
    ]
    runs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    accepted = sum(run["statuses"].get("202", 0) for run in runs)
    return {"accepted": accepted, "seconds": max(run["seconds"] for run in runs)}


@contextmanager
def pg_schema(store: str, name: str) -> Iterator[str]:
    """A fresh schema on the benchmark's database; yields the store URL that uses it."""
    import asyncpg  # type: ignore[import-untyped]

    from gateway.store.postgres import parse_url

    dsn = parse_url(store)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
    try:
        yield f"{store}{'&' if '?' in store else '?'}search_path={name}"
    finally:
        asyncio.run(admin(f"DROP SCHEMA IF EXISTS {name} CASCADE"))


def pg_phases(store: str, phase: float, sub_url: str, work: Path) -> dict[str, Any]:
    """Ingest and e2e on PostgreSQL with one and with two replicas sharing the database."""
    result: dict[str, Any] = {}
    stalled = [{"name": f"team{i}", "sink": f"{sub_url}/stall",
                "delivery": {"max_in_flight": 1, "timeout": "1h"}} for i in range(3)]
    one = [{"name": "e2e", "sink": f"{sub_url}/e2e",
            "delivery": {"max_in_flight": 64, "timeout": "10s"}}]
    for replicas in (1, 2):
        for figure, subscriptions in (("ingest", stalled), ("e2e", one)):
            name = f"pg_{figure}_{replicas}"
            with pg_schema(store, f"bench_{os.getpid()}_{name}") as url, ExitStack() as stack:
                urls = []
                for index in range(replicas):
                    port = free_port()
                    config = deployment(work / f"{name}_{index}", port, subscriptions, url)
                    stack.enter_context(process(
                        [PY, "-m", "gateway", "serve", "-c", str(config)],
                        f"http://127.0.0.1:{port}/readyz", work / f"gw-{name}_{index}.log"))
                    urls.append(f"http://127.0.0.1:{port}/events")
                reset(sub_url)
                run = load_split(urls, phase, 32, prefix=name)
                if figure == "ingest":
                    eps = run["accepted"] / run["seconds"]
                else:
                    eps = stats(sub_url)["count"] / phase
                result[f"pg_{figure}_eps_{replicas}"] = round(eps, 1)
    return result


def deployment(
    folder: Path, port: int, subscriptions: list[dict[str, Any]],
    store: str = "sqlite:///../data/gateway.db",
) -> Path:
    (folder / "config" / "subscriptions").mkdir(parents=True)
    (folder / "schemas").mkdir()
    (folder / "schemas" / "bench.order.created.json").write_text(json.dumps(SCHEMA))
    config = {
        "server": {"port": port, "shutdown_grace": "2s"},
        "store": store,
        "schemas": "../schemas",
        "validation": {"unknown_types": "reject"},
        "dispatch": {"max_in_flight": 256},
    }
    (folder / "config" / "gateway.yaml").write_text(json.dumps(config))
    (folder / "config" / "subscriptions" / "bench.yaml").write_text(
        json.dumps({"subscriptions": subscriptions})
    )
    return folder / "config" / "gateway.yaml"


def stats(sub_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sub_url}/stats") as resp:
        return json.loads(resp.read())


def reset(sub_url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{sub_url}/reset", method="POST")).read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (under a minute)")
    parser.add_argument("--store", help="postgresql://... : also measure the PostgreSQL store")
    args = parser.parse_args()
    phase = 5.0 if args.quick else 15.0
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    rss = 0.0
    result: dict[str, Any] = {}
    sub_port = free_port()
    sub_url = f"http://127.0.0.1:{sub_port}"
    try:
        with process([PY, str(HERE / "servers.py"), "subscriber", str(sub_port)],
                     f"{sub_url}/stats", work / "subscriber.log"):
            port = free_port()
            with process([PY, str(HERE / "servers.py"), "bare", str(port)],
                         f"http://127.0.0.1:{port}/", work / "bare.log"):
                result["bare_ingest_rps"] = load(f"http://127.0.0.1:{port}/events", phase)["rps"]

            port = free_port()
            stalled = [{"name": f"team{i}", "sink": f"{sub_url}/stall",
                        "delivery": {"max_in_flight": 1, "timeout": "1h"}} for i in range(3)]
            config = deployment(work / "ingest", port, stalled)
            with process([PY, "-m", "gateway", "serve", "-c", str(config)],
                         f"http://127.0.0.1:{port}/readyz", work / "gw-ingest.log") as gw:
                run = load(f"http://127.0.0.1:{port}/events", phase, prefix="i")
                result["ingest_eps"] = round(run["statuses"].get("202", 0) / run["seconds"], 1)
                result["ingest_statuses"] = run["statuses"]
                rss = max(rss, peak_rss_mb(gw.pid))

            port = free_port()
            with process([PY, str(HERE / "servers.py"), "relay", str(port), f"{sub_url}/relay"],
                         f"http://127.0.0.1:{port}/", work / "relay.log"):
                result["bare_relay_eps"] = load(f"http://127.0.0.1:{port}/events", phase)["rps"]

            port = free_port()
            one = [{"name": "e2e", "sink": f"{sub_url}/e2e",
                    "delivery": {"max_in_flight": 64, "timeout": "10s"}}]
            config = deployment(work / "e2e", port, one)
            with process([PY, "-m", "gateway", "serve", "-c", str(config)],
                         f"http://127.0.0.1:{port}/readyz", work / "gw-e2e.log") as gw:
                reset(sub_url)
                started = time.time()
                run = load(f"http://127.0.0.1:{port}/events", phase, prefix="d")
                # Counted to the last arrival once the backlog drained, as fanout_eps is: a
                # gateway that accepts fast and delivers late scores what it delivers.
                from fanout import drained

                seen = drained(sub_url, ("e2e",), run["statuses"].get("202", 0))
                last = seen["paths"].get("e2e", {}).get("last", started)
                result["e2e_eps"] = round(seen["count"] / max(last - started, phase), 1)
                result["e2e_drain_s"] = round(max(0.0, last - started - phase), 1)
                reset(sub_url)
                load(f"http://127.0.0.1:{port}/events", phase, concurrency=16, rate=500,
                     prefix="l")
                time.sleep(1.0)
                latencies = stats(sub_url)["latencies"]
                result["latency_events"] = len(latencies)
                result["latency_p50_ms"] = round(percentile(latencies, 0.50), 2)
                result["latency_p99_ms"] = round(percentile(latencies, 0.99), 2)
                rss = max(rss, peak_rss_mb(gw.pid))

            from fanout import fanout_phases

            result.update(fanout_phases(phase, sub_url, work))

            from natsfanout import nats_phases  # bench/natsfanout.py; {} without NATS

            result.update(nats_phases(phase, work))

            if args.store:
                from fanout import pg_fanout_phases

                result.update(pg_phases(args.store, phase, sub_url, work))
                result.update(pg_fanout_phases(args.store, phase, sub_url, work))

            import deadsink  # bench/deadsink.py: one subscription down with a backlog

            result.update(deadsink.phase(work, sub_url, args.quick))

            import hostile  # bench/hostile.py; imports this module's helpers

            result.update(hostile.phase(work, phase))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    routing = subprocess.run([PY, str(HERE / "routing.py")], capture_output=True, text=True,
                             check=True, cwd=ROOT)
    result.update(json.loads(routing.stdout.strip().splitlines()[-1]))
    result["ingest_ratio"] = round(result["ingest_eps"] / result["bare_ingest_rps"], 3)
    result["e2e_ratio"] = round(result["e2e_eps"] / result["bare_relay_eps"], 3)
    if args.store:
        result["pg_ingest_ratio"] = round(result["pg_ingest_eps_1"] / result["bare_ingest_rps"], 3)
        result["pg_e2e_ratio"] = round(result["pg_e2e_eps_1"] / result["bare_relay_eps"], 3)
    result["rss_mb"] = round(rss, 1)
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    result["mode"] = "quick" if args.quick else "full"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
