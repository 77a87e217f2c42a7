"""The hostile phase of the benchmark: one good producer's latency while others send poison.

    python bench/hostile.py [--seconds 10]      (the phase alone; prints one JSON object)

8 clients post, in a loop, a ~1 MB structured event whose `data.items` holds 20,500 entries
that each break the event type's schema (three violations apiece), while a good producer posts
1 KB events at 100/s on a keep-alive connection and times each answer. Figures:
  hostile_p99_ms       the good producer's p99 (target <= 50 ms)
  hostile_p50_ms       its median
  hostile_rss_ratio    the gateway's resident memory after the phase over before it (<= 1.5)
  hostile_worker_rss_mb  the resident memory of its worker process for large bodies, after
  hostile_requests     poison requests answered during the phase, by status
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from run import PY, SCHEMA, free_port, percentile, process  # bench/run.py

HERE = Path(__file__).resolve().parent
CLIENTS = 8
ITEMS = 20_500
GOOD_RATE = 100.0  # good events per second
HOSTILE_TYPE = "bench.hostile"
HOSTILE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["sku", "quantity"], "additionalProperties": False,
        "properties": {"sku": {"type": "string", "pattern": "^S-[0-9]+$"},
                       "quantity": {"type": "integer", "minimum": 1}}}}},
}  # fmt: skip


def hostile_body() -> bytes:
    item = b'{"sku":12345,"quantity":"many","x":1}'  # each breaks three rules
    head = (b'{"specversion":"1.0","id":"poison","source":"/bench/hostile","type":"'
            + HOSTILE_TYPE.encode() + b'","datacontenttype":"application/json","data":{"items":[')
    return head + b",".join([item] * ITEMS) + b"]}}"


def good_body(seq: int) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": f"good-{seq}", "source": "/bench/shop",
        "type": "bench.order.created", "datacontenttype": "application/json",
        "data": {"order_id": f"o-{seq}", "customer": "c-1", "amount": 1299, "currency": "EUR",
                 "items": [{"sku": "sku-1", "quantity": 2, "price": 500}], "note": "x" * 700},
    }).encode()  # fmt: skip


def deployment(folder: Path, port: int) -> Path:
    (folder / "config" / "subscriptions").mkdir(parents=True)
    (folder / "schemas").mkdir()
    (folder / "schemas" / "bench.order.created.json").write_text(json.dumps(SCHEMA))
    (folder / "schemas" / f"{HOSTILE_TYPE}.json").write_text(json.dumps(HOSTILE_SCHEMA))
    config = {"server": {"port": port, "shutdown_grace": "2s"},
              "store": "sqlite:///../data/gateway.db", "schemas": "../schemas",
              "validation": {"unknown_types": "reject"}}  # fmt: skip
    (folder / "config" / "gateway.yaml").write_text(json.dumps(config))
    (folder / "config" / "subscriptions" / "none.yaml").write_text('{"subscriptions": []}')
    return folder / "config" / "gateway.yaml"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_rss_mb(pid: int) -> float:
    """The resident memory of the gateway's child processes (its worker for large bodies)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_mb(int(child))
    return total


def good_producer(port: int, seconds: float, start: int = 0) -> list[float]:
    """Post good events at GOOD_RATE for `seconds`; the latency of each 202, in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    begin = time.monotonic()
    seq = start
    while time.monotonic() - begin < seconds:
        due = begin + (seq - start) / GOOD_RATE
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        sent = time.perf_counter()
        conn.request("POST", "/events", good_body(seq),
                     {"Content-Type": "application/cloudevents+json"})  # fmt: skip
        resp = conn.getresponse()
        resp.read()
        if resp.status != 202:
            raise RuntimeError(f"a good event got {resp.status}")
        latencies.append((time.perf_counter() - sent) * 1000)
        seq += 1
    conn.close()
    return latencies


async def _flood(port: int, seconds: float) -> dict[str, int]:
    """CLIENTS connections posting the poison event back to back; statuses counted."""
    body = hostile_body()
    head = (b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/cloudevents+json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))  # fmt: skip
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            status = status_line.split(b" ")[1].decode()
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return statuses


def phase(work: Path, seconds: float) -> dict[str, Any]:
    """Run the hostile phase against a fresh `gateway serve`; its figures."""
    port = free_port()
    config = deployment(work / "hostile", port)
    with process([PY, "-m", "gateway", "serve", "-c", str(config)],
                 f"http://127.0.0.1:{port}/readyz", work / "gw-hostile.log") as gw:
        good_producer(port, 2.0, start=1_000_000)  # warm up: imports, caches, the store
        before = rss_mb(gw.pid)
        flood = subprocess.Popen([PY, str(HERE / "hostile.py"), "--flood", str(port),
                                  "--seconds", str(seconds)], stdout=subprocess.PIPE)  # fmt: skip
        time.sleep(0.5)  # let the poison arrive first
        latencies = good_producer(port, seconds - 1.0)
        out, _ = flood.communicate(timeout=seconds + 60)
        time.sleep(1.0)
        after = rss_mb(gw.pid)
        worker = children_rss_mb(gw.pid)
    return {
        "hostile_p50_ms": round(percentile(latencies, 0.50), 2),
        "hostile_p99_ms": round(percentile(latencies, 0.99), 2),
        "hostile_good_events": len(latencies),
        "hostile_requests": json.loads(out.decode().strip().splitlines()[-1]),
        "hostile_rss_mb": [round(before, 1), round(after, 1)],
        "hostile_rss_ratio": round(after / before, 3),
        "hostile_worker_rss_mb": round(worker, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        print(json.dumps(asyncio.run(_flood(args.flood, args.seconds))))
        return
    with tempfile.TemporaryDirectory(prefix="gateway-bench-hostile-") as work:
        print(json.dumps(phase(Path(work), args.seconds)))


if __name__ == "__main__":
    sys.exit(main())
