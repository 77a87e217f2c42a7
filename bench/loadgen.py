"""A small HTTP/1.1 load generator built on asyncio protocols (keep-alive, one request in flight
per connection, the next request written from the response callback), cheap enough that one
core of it keeps a Python server busy.

Closed loop: `--concurrency` connections post as fast as answers come back, for `--duration`.
Open loop: `--rate` requests per second on a fixed schedule, spread over the connections.
Prints one JSON object: requests answered per status, the rate and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
from collections import Counter
from urllib.parse import urlsplit

BODY_PAD = "x" * 760  # brings a structured order event to about 1 KB
KEYS = 0  # --keys N: a partitionkey among N values, in turn (the ordered fan-out phase)
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def event_body(seq: int, prefix: str) -> bytes:
    key = f'"partitionkey":"k{seq % KEYS}",' if KEYS else ""
    return (
        f'{{"specversion":"1.0",{key}"id":"{prefix}-{seq}","source":"/bench/shop",'
        '"type":"bench.order.created","datacontenttype":"application/json",'
        f'"time":"2026-01-01T00:00:00Z","benchts":"{time.time():.6f}",'
        f'"data":{{"order_id":"o-{seq}","customer":"c-1","amount":1299,"currency":"EUR",'
        '"items":[{"sku":"sku-1","quantity":2,"price":500},{"sku":"sku-2","quantity":1,'
        f'"price":299}}],"note":"{BODY_PAD}"}}}}'
    ).encode()


class Client(asyncio.Protocol):
    """One keep-alive connection; `send` writes a request, responses are parsed in place."""

    def __init__(self, head: bytes, statuses: Counter[int], on_response: object) -> None:
        self.head = head
        self.statuses = statuses
        self.on_response = on_response
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(self.head % len(body) + body)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            match = _LENGTH.search(head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < total:
                return
            self.statuses[int(head[9:12])] += 1
            self.buffer = self.buffer[total:]
            self.on_response(self)  # type: ignore[operator]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run(url: str, concurrency: int, duration: float, rate: float, prefix: str) -> dict:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n"
    ).encode()
    statuses: Counter[int] = Counter()
    seq = itertools.count()
    done = loop.create_future()
    outstanding = [0]
    sending = [True]
    start = time.monotonic()
    deadline = start + duration

    def finish_one() -> None:
        outstanding[0] -= 1
        finished = sending[0] is False if rate else time.monotonic() >= deadline
        if outstanding[0] == 0 and finished and not done.done():
            done.set_result(None)

    def closed_loop(client: Client) -> None:
        if time.monotonic() < deadline:
            client.send(event_body(next(seq), prefix))
        else:
            finish_one()

    def open_loop(client: Client) -> None:
        finish_one()

    clients = []
    for _ in range(concurrency):
        _, client = await loop.create_connection(
            lambda: Client(head, statuses, open_loop if rate else closed_loop),
            parts.hostname, parts.port,
        )
        clients.append(client)
    start = time.monotonic()
    deadline = start + duration
    if rate:
        # Open loop: requests go out on schedule whatever the answers do; each connection
        # carries its share, pipelined when a response is late.
        n = 0
        while (due := start + n / rate) < deadline:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            outstanding[0] += 1
            clients[n % concurrency].send(event_body(next(seq), prefix))
            n += 1
        sending[0] = False
        if outstanding[0] == 0:
            done.set_result(None)
    else:
        for client in clients:
            outstanding[0] += 1
            client.send(event_body(next(seq), prefix))
    await asyncio.wait_for(done, duration + 30)
    elapsed = time.monotonic() - start
    for client in clients:
        assert client.transport is not None
        client.transport.close()
    total = sum(statuses.values())
    return {"statuses": {str(k): v for k, v in statuses.items()}, "requests": total,
            "seconds": round(elapsed, 3), "rps": round(total / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--prefix", default="e")
    parser.add_argument("--keys", type=int, default=0)
    args = parser.parse_args()
    global KEYS
    KEYS = args.keys
    result = asyncio.run(run(args.url, args.concurrency, args.duration, args.rate, args.prefix))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
