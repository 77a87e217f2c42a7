"""Routing cost per event: 100 subscriptions carrying CESQL filters (and the other dialects),
evaluated against a realistic event. Prints one JSON object: microseconds per event.

    python bench/routing.py
"""

from __future__ import annotations

import json
import time

from gateway.config.model import Subscription
from gateway.event import DataKind, Event
from gateway.routing.filters import compile_filter, match

SQL = [
    "type LIKE 'com.example.order.%' AND INT(amount) > {n}",
    "source = '/shop' AND (subject = 'eu' OR subject LIKE '%-eu')",
    "EXISTS region AND region IN ('eu-west', 'eu-central', 'us-east-{n}')",
    "NOT (type = 'com.example.order.test') AND LENGTH(id) > {n}",
    "UPPER(currency) = 'EUR' AND INT(amount) % 7 <> {n}",
]


def subscriptions(count: int = 100) -> list[Subscription]:
    subs = []
    for n in range(count):
        expression = SQL[n % len(SQL)].format(n=n)
        filters = (compile_filter({"sql": expression}, f"s{n}"),)
        if n % 5 == 0:
            filters += (compile_filter({"prefix": {"type": "com.example."}}, f"s{n}"),)
        subs.append(Subscription(name=f"s{n}", sink="http://127.0.0.1:1/", filters=filters))
    return subs


def main() -> None:
    event = Event(
        {"specversion": "1.0", "id": "a5f3c2d1-0000-4000-8000-000000000001", "source": "/shop",
         "type": "com.example.order.created", "subject": "fr-eu", "amount": "1500",
         "currency": "eur", "region": "eu-west", "time": "2026-11-22T10:00:00Z"},
        b'{"order_id": "o-1"}', DataKind.JSON, {"order_id": "o-1"},
    )
    subs = subscriptions()
    rounds = 2000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            matched = [s.name for s in subs if match(s, event)]
        best = min(best, (time.perf_counter() - start) / rounds)
    print(json.dumps({"routing_subscriptions": len(subs), "routing_matched": len(matched),
                      "routing_us_per_event": round(best * 1e6, 1)}))


if __name__ == "__main__":
    main()
