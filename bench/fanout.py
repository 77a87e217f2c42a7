"""Fan-out phases of the benchmark: what users run, three live subscribers per event.

    python bench/fanout.py [--quick]     (these phases alone; bench/run.py runs them too)

  bare_ingest_gen_rps    a bare aiohttp server (read body, 202) under the same generator as the
                         fan-out phases: the baseline of ingest_live_ratio
  bare_fanout_eps        a bare aiohttp server that forwards each request to 3 sinks at once
                         (one shared keep-alive client), then answers 202
  fanout_eps             `gateway serve` with 3 live subscriptions, offered load as fast as it
                         accepts for the phase; events delivered to all three per second,
                         counted from the start of the load to the last arrival once the
                         backlog has drained
  ingest_live_eps        events accepted per second during that phase (ingest while delivering)
  ordered_fanout_eps     the same phase with `delivery.ordering: {key: partitionkey}` on the
                         three subscriptions and events spread over 100 partitionkey values;
                         ordered_fanout_ratio: it over fanout_eps of the same run
  batch_fanout_eps       the same phase with `mode: batch` (defaults: 100 events, 1 MiB, 50 ms)
                         on the three subscriptions, events counted; batch_fanout_ratio: it over
                         fanout_eps of the same run
  fanout_cpu_us_per_event  the gateway's CPU time (user + system) in that phase per event
                         fanned out: steadier than rates on a shared machine
  fanout_latency_p50_ms / _p99_ms at 500 and 1,000 events/s offered (open loop) to 3
                         subscribers: ingest to arrival, every delivery counted, late ones too
  slow_neighbour_p99_ms  a healthy subscription's p99 at 200 events/s offered while four others
                         have sinks that answer after 5 s (dispatch.max_in_flight: 64), and
                         slow_neighbour_alone_p99_ms: the same subscription's p99 on its own

With --store postgresql://... (or `bench/run.py --store ...`):
  pg_fanout_eps_1, pg_fanout_eps_2   the fan-out phase on PostgreSQL with `gateway serve
                         --workers 1` and `--workers 2`

Throughput phases use `wrk` (bench/post.lua, one thread, 32 connections) when it is installed,
else bench/loadgen.py; open-loop phases use bench/loadgen.py (wrk has no fixed-rate mode).
Baselines run on the same event loop as `gateway serve` (bench/servers.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run import (
    HERE,
    PY,
    deployment,
    free_port,
    load,
    percentile,
    process,
    reset,
    stats,
    subscriber_in_workspace,
)

from gateway import eventloop

SINKS = ("f0", "f1", "f2")
CONNECTIONS = 32


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "loadgen.py"


def closed_load(url: str, duration: float, prefix: str, keys: int = 0) -> dict[str, Any]:
    """As many requests as answers come back on 32 connections: answered, accepted, seconds.
    `keys`: the events carry a partitionkey among that many values."""
    if generator() == "wrk":
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration:g}s", "-s", str(HERE / "post.lua"),
             url],
            capture_output=True, text=True, check=True,
            env={**os.environ, "WRK_PREFIX": prefix, "WRK_KEYS": str(keys)},
        )
        run = json.loads(out.stdout.strip().splitlines()[-1])
        return {"answered": run["requests"], "accepted": run["requests"] - run["non2xx"],
                "seconds": run["seconds"]}
    run = load(url, duration, CONNECTIONS, prefix=prefix, keys=keys)
    return {"answered": run["requests"], "accepted": run["statuses"].get("202", 0),
            "seconds": run["seconds"]}


def drained(sub_url: str, paths: tuple[str, ...], expected: int, timeout: float = 600) -> dict:
    """Wait until every path has `expected` arrivals and no more come for 0.5 s (or none at
    all for 3 s: something is stuck); the last stats."""
    deadline = time.monotonic() + timeout
    last_total, still = -1, 0.0
    while time.monotonic() < deadline:
        seen = stats(sub_url)
        counts = [seen["paths"].get(p, {}).get("count", 0) for p in paths]
        total = sum(counts)
        still = still + 0.25 if total == last_total else 0.0
        if still >= (0.5 if min(counts) >= expected else 3.0):
            return seen
        last_total = total
        time.sleep(0.25)
    return stats(sub_url)


def gateway(work: Path, name: str, port: int, subscriptions: list[dict[str, Any]],
            max_in_flight: int = 256) -> tuple[list[str], str, Path]:
    config = deployment(work / name, port, subscriptions)
    settings = json.loads(config.read_text())
    settings["dispatch"]["max_in_flight"] = max_in_flight
    config.write_text(json.dumps(settings))
    return ([PY, "-m", "gateway", "serve", "-c", str(config)],
            f"http://127.0.0.1:{port}/readyz", work / f"gw-{name}.log")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux); None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def live(sub_url: str, paths: tuple[str, ...], **delivery: Any) -> list[dict[str, Any]]:
    return [{"name": path, "sink": f"{sub_url}/{path}",
             "delivery": {"max_in_flight": 64, "timeout": "10s", **delivery}} for path in paths]


def closed_fanout(gw: Any, url: str, sub_url: str, phase: float, prefix: str,
                  keys: int = 0) -> dict[str, Any]:
    """Load `url` for `phase` as fast as it answers, wait for the backlog to drain: accepted,
    delivered (to every sink), seconds to the last arrival, the gateway's CPU seconds."""
    reset(sub_url)
    cpu = cpu_seconds(gw.pid)
    started = time.time()
    run = closed_load(url, phase, prefix, keys)
    seen = drained(sub_url, SINKS, run["accepted"])
    last = max(seen["paths"].get(p, {}).get("last", started) for p in SINKS)
    return {
        "accepted": run["accepted"], "seconds": run["seconds"],
        "delivered": min(seen["paths"].get(p, {}).get("count", 0) for p in SINKS),
        "elapsed": max(last - started, run["seconds"]), "drain": last - started - run["seconds"],
        "cpu": None if cpu is None else (cpu_seconds(gw.pid) or cpu) - cpu,
    }


def ordered_fanout_phase(phase: float, sub_url: str, work: Path) -> dict[str, Any]:
    """`ordered_fanout_eps`: the fan-out phase with per-key ordering (CONTRACT 5) over 100
    partitionkey values; at most one delivery per key and subscription is in flight."""
    port = free_port()
    subscriptions = live(sub_url, SINKS, ordering={"key": "partitionkey"})
    with process(*gateway(work, "ordered", port, subscriptions)) as gw:
        got = closed_fanout(gw, f"http://127.0.0.1:{port}/events", sub_url, phase, "go", 100)
    return {"ordered_fanout_accepted": got["accepted"],
            "ordered_fanout_delivered": got["delivered"],
            "ordered_fanout_eps": round(got["delivered"] / got["elapsed"], 1)}


def batch_fanout_phase(phase: float, sub_url: str, work: Path) -> dict[str, Any]:
    """`batch_fanout_eps`: the fan-out phase with `mode: batch` (CONTRACT 5; the defaults: up
    to 100 events, 1 MiB, 50 ms linger) on the three subscriptions; events counted, not
    requests."""
    port = free_port()
    subscriptions = live(sub_url, SINKS, mode="batch")
    with process(*gateway(work, "batch", port, subscriptions)) as gw:
        got = closed_fanout(gw, f"http://127.0.0.1:{port}/events", sub_url, phase, "gb")
    return {"batch_fanout_accepted": got["accepted"],
            "batch_fanout_delivered": got["delivered"],
            "batch_fanout_eps": round(got["delivered"] / got["elapsed"], 1)}


def open_loop(sub_url: str, url: str, rate: float, duration: float, prefix: str,
              paths: tuple[str, ...]) -> list[float]:
    """Offer `rate` events/s for `duration`, wait for the deliveries; their latencies in ms."""
    reset(sub_url)
    out = subprocess.run(
        [PY, str(HERE / "loadgen.py"), url, "--duration", str(duration), "--concurrency",
         str(CONNECTIONS), "--rate", str(rate), "--prefix", prefix],
        capture_output=True, text=True,
    )
    if out.returncode:
        raise RuntimeError(f"load generator failed: {out.stderr.strip()[-800:]}")
    run = json.loads(out.stdout.strip().splitlines()[-1])
    seen = drained(sub_url, paths, run["statuses"].get("202", 0))
    return [ms for p in paths for ms in seen["paths"].get(p, {}).get("latencies", [])]


def fanout_phases(phase: float, sub_url: str, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"generator": generator(), "open_loop_generator": "loadgen.py",
                              "event_loop": eventloop.name()}
    servers = str(HERE / "servers.py")

    port = free_port()
    with process([PY, servers, "bare", str(port)], f"http://127.0.0.1:{port}/",
                 work / "bare-gen.log"):
        run = closed_load(f"http://127.0.0.1:{port}/events", phase, "bg")
        result["bare_ingest_gen_rps"] = round(run["accepted"] / run["seconds"], 1)

    port = free_port()
    bare_sinks = [f"{sub_url}/b{i}" for i in range(3)]
    with process([PY, servers, "fanout", str(port), *bare_sinks], f"http://127.0.0.1:{port}/",
                 work / "bare-fanout.log"):
        reset(sub_url)
        run = closed_load(f"http://127.0.0.1:{port}/events", phase, "bf")
        result["bare_fanout_eps"] = round(run["accepted"] / run["seconds"], 1)

    port = free_port()
    url = f"http://127.0.0.1:{port}/events"
    with process(*gateway(work, "fanout", port, live(sub_url, SINKS))) as gw:
        reset(sub_url)
        cpu = cpu_seconds(gw.pid)
        started = time.time()
        run = closed_load(url, phase, "gf")
        result["ingest_live_eps"] = round(run["accepted"] / run["seconds"], 1)
        seen = drained(sub_url, SINKS, run["accepted"])
        delivered = min(seen["paths"].get(p, {}).get("count", 0) for p in SINKS)
        last = max(seen["paths"].get(p, {}).get("last", started) for p in SINKS)
        result["fanout_accepted"] = run["accepted"]
        result["fanout_delivered"] = delivered
        result["fanout_drain_s"] = round(last - started - run["seconds"], 1)
        result["fanout_eps"] = round(delivered / max(last - started, run["seconds"]), 1)
        if cpu is not None:
            used = (cpu_seconds(gw.pid) or cpu) - cpu
            result["fanout_cpu_us_per_event"] = round(used / max(delivered, 1) * 1e6)

        for rate in (500, 1000):
            latencies = open_loop(sub_url, url, rate, phase, f"gl{rate}", SINKS)
            result[f"fanout_latency_p50_ms_{rate}"] = round(percentile(latencies, 0.50), 1)
            result[f"fanout_latency_p99_ms_{rate}"] = round(percentile(latencies, 0.99), 1)

    healthy = live(sub_url, ("healthy",))
    slow = [{"name": f"slow{i}", "sink": f"{sub_url}/slow", "delivery": {"timeout": "10s"}}
            for i in range(4)]
    for figure, prefix, subscriptions in (("slow_neighbour_p99_ms", "sn", healthy + slow),
                                          ("slow_neighbour_alone_p99_ms", "sa", healthy)):
        port = free_port()
        with process(*gateway(work, figure, port, subscriptions, max_in_flight=64)):
            latencies = open_loop(sub_url, f"http://127.0.0.1:{port}/events", 200, phase,
                                  prefix, ("healthy",))
            result[figure] = round(percentile(latencies, 0.99), 1)

    result.update(ordered_fanout_phase(phase, sub_url, work))
    result["ordered_fanout_ratio"] = round(
        result["ordered_fanout_eps"] / result["fanout_eps"], 3)
    result.update(batch_fanout_phase(phase, sub_url, work))
    result["batch_fanout_ratio"] = round(result["batch_fanout_eps"] / result["fanout_eps"], 3)
    result["fanout_ratio"] = round(result["fanout_eps"] / result["bare_fanout_eps"], 3)
    result["ingest_live_ratio"] = round(
        result["ingest_live_eps"] / result["bare_ingest_gen_rps"], 3)
    return result


def pg_fanout_phases(store: str, phase: float, sub_url: str, work: Path) -> dict[str, Any]:
    """`pg_fanout_eps_1` / `_2`: the fan-out phase on PostgreSQL with `gateway serve --workers 1`
    and `--workers 2` (two processes sharing the port and the database), each in a fresh
    schema; and the gateway's CPU per event over all its processes."""
    from run import pg_schema

    result: dict[str, Any] = {}
    for workers in (1, 2):
        port = free_port()
        url = f"http://127.0.0.1:{port}/events"
        name = f"pg_fanout_{workers}"
        with pg_schema(store, f"bench_{os.getpid()}_{name}") as store_url:
            config = deployment(work / name, port, live(sub_url, SINKS), store=store_url)
            command = [PY, "-m", "gateway", "serve", "-c", str(config), "--workers", str(workers)]
            with process(command, f"http://127.0.0.1:{port}/readyz", work / f"gw-{name}.log"):
                time.sleep(1.0 if workers > 1 else 0.0)  # every worker listening
                reset(sub_url)
                started = time.time()
                run = closed_load(url, phase, f"pf{workers}")
                seen = drained(sub_url, SINKS, run["accepted"])
                delivered = min(seen["paths"].get(p, {}).get("count", 0) for p in SINKS)
                last = max(seen["paths"].get(p, {}).get("last", started) for p in SINKS)
                result[f"pg_fanout_eps_{workers}"] = round(
                    delivered / max(last - started, run["seconds"]), 1
                )
                result[f"pg_ingest_live_eps_{workers}"] = round(
                    run["accepted"] / run["seconds"], 1
                )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5-second phases")
    parser.add_argument("--store", help="postgresql://... : also pg_fanout_eps_1 and _2")
    args = parser.parse_args()
    phase = 5.0 if args.quick else 15.0
    with subscriber_in_workspace() as (sub_url, work):
        result = fanout_phases(phase, sub_url, work)
        if args.store:
            result.update(pg_fanout_phases(args.store, phase, sub_url, work))
    result["mode"] = "quick" if args.quick else "full"
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
