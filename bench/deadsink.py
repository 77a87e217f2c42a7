"""Dead-sink phases of the benchmark: what one subscriber that is down costs the others.

    python bench/deadsink.py [--quick]     (these phases alone; bench/run.py runs them too)

  dead_sink_cpu_pct        the gateway's CPU (% of one core) over a quiet window while one of
                           3 subscriptions has a sink that refuses connections and a backlog of
                           20,000 deliveries (5,000 with --quick), the other two live and drained
  dead_sink_cpu_pct_no_breaker  the same with `circuit_breaker: off` (every row retried on its
                           own schedule): what the breaker saves
  dead_sink_live_eps       events/s delivered to both live subscriptions while the backlog of
                           the dead one builds (closed load, counted to the last arrival)
  dead_sink_alone_eps      the same two live subscriptions without the dead one
  dead_sink_live_ratio     dead_sink_live_eps / dead_sink_alone_eps (target >= 0.9)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fanout import closed_load, cpu_seconds, drained, gateway
from run import free_port, process, reset, subscriber_in_workspace

LIVE = ("l0", "l1")


def subscriptions(sub_url: str, dead: str | None, breaker: bool) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"name": path, "sink": f"{sub_url}/{path}",
         "delivery": {"max_in_flight": 64, "timeout": "10s"}} for path in LIVE
    ]
    if dead is not None:
        delivery: dict[str, Any] = {"max_in_flight": 64, "timeout": "2s"}
        if not breaker:
            delivery["circuit_breaker"] = False
        found.append({"name": "dead", "sink": dead, "delivery": delivery})
    return found


def run_phase(sub_url: str, work: Path, name: str, subs: list[dict[str, Any]], backlog: int,
              quiet: float) -> dict[str, float]:
    """Load until `backlog` events are accepted; live throughput, then CPU over `quiet` s."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/events"
    out: dict[str, float] = {}
    with process(*gateway(work, name, port, subs)) as gw:
        reset(sub_url)
        started, accepted = time.time(), 0
        while accepted < backlog:
            accepted += closed_load(url, 3.0, f"{name}{accepted}")["accepted"]
        seen = drained(sub_url, LIVE, accepted)
        last = max(seen["paths"].get(p, {}).get("last", started) for p in LIVE)
        delivered = min(seen["paths"].get(p, {}).get("count", 0) for p in LIVE)
        out["eps"] = delivered / max(last - started, 1e-9)
        out["accepted"] = accepted
        if not quiet:
            return out
        before = cpu_seconds(gw.pid)
        time.sleep(quiet)
        after = cpu_seconds(gw.pid)
        if before is not None and after is not None:
            out["cpu_pct"] = (after - before) / quiet * 100
    return out


def phase(work: Path, sub_url: str, quick: bool) -> dict[str, Any]:
    backlog = 5_000 if quick else 20_000
    quiet = 10.0 if quick else 30.0
    dead = f"http://127.0.0.1:{free_port()}/dead"  # nothing listens: connection refused
    result: dict[str, Any] = {"dead_sink_backlog": backlog}
    with_breaker = run_phase(sub_url, work, "ds", subscriptions(sub_url, dead, True), backlog,
                             quiet)
    print(f"with the breaker: {with_breaker}", file=sys.stderr)
    result["dead_sink_cpu_pct"] = round(with_breaker.get("cpu_pct", float("nan")), 1)
    result["dead_sink_live_eps"] = round(with_breaker["eps"], 1)
    without = run_phase(sub_url, work, "dn", subscriptions(sub_url, dead, False), backlog, quiet)
    print(f"without: {without}", file=sys.stderr)
    result["dead_sink_cpu_pct_no_breaker"] = round(without.get("cpu_pct", float("nan")), 1)
    alone = run_phase(sub_url, work, "da", subscriptions(sub_url, None, True), backlog, 0.0)
    result["dead_sink_alone_eps"] = round(alone["eps"], 1)
    result["dead_sink_live_ratio"] = round(with_breaker["eps"] / alone["eps"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 5,000-delivery backlog")
    args = parser.parse_args()
    with subscriber_in_workspace() as (sub_url, work):
        result = phase(work, sub_url, args.quick)
    result["mode"] = "quick" if args.quick else "full"
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
