"""Thousands of malformed requests: each gets a 4xx problem+json, never a 5xx, and the gateway
stays healthy and keeps delivering."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from tests.integration.conftest import Start
from tests.integration.events import order, structured

CONTENT_TYPES = [
    None, "application/cloudevents+json", "application/cloudevents-batch+json",
    "APPLICATION/CLOUDEVENTS+JSON; charset=utf-8", "application/cloudevents+avro",
    "application/cloudevents+json; charset=latin-1", "application/json", "text/plain",
    "application/cloudevents-batch+xml", "multipart/form-data", "application/xml; charset=utf-8",
    "garbage", "",
]
VALUES: list[Any] = [
    None, "", "1.0", "0.3", 5, 2**31, -2**31 - 1, 1.5, True, [], {}, "a b", "\x00", "\ud800",
    "%C0%A0", "urn:x", "http://[::1", "2024-13-45T99:00:00Z", "2024-01-01T00:00:00Z",
    "\u007f", "\ufffe", "x" * 300, "text/plain", "not a media type",
]
ATTRS = ["id", "source", "specversion", "type", "time", "dataschema", "datacontenttype",
         "subject", "data", "data_base64", "Bad-Name", "ext", "x" * 30, ""]


def mutate_structured(rng: random.Random) -> Any:
    doc: dict[str, Any] = json.loads(structured(order())["data"])
    for _ in range(rng.randint(1, 3)):
        attr = rng.choice(ATTRS)
        if rng.random() < 0.3:
            doc.pop(attr, None)
        else:
            doc[attr] = rng.choice(VALUES)
    return doc


def request(rng: random.Random) -> dict[str, Any]:
    kind = rng.randrange(6)
    ctype = rng.choice(CONTENT_TYPES)
    headers: dict[str, str] = {} if ctype is None else {"Content-Type": ctype}
    if kind == 0:  # random bytes
        body = rng.randbytes(rng.randrange(0, 200))
    elif kind == 1:  # a structured event with broken attributes
        body = json.dumps(mutate_structured(rng), default=str).encode("utf-8", "surrogatepass")
        headers["Content-Type"] = "application/cloudevents+json"
    elif kind == 2:  # a batch with one broken event among good ones
        items = [json.loads(structured(order())["data"]) for _ in range(rng.randint(0, 3))]
        items.insert(rng.randint(0, len(items)), mutate_structured(rng))
        body = json.dumps(items, default=str).encode("utf-8", "surrogatepass")
        headers["Content-Type"] = "application/cloudevents-batch+json"
    elif kind == 3:  # binary mode with broken ce- headers
        base = {"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s", "ce-type": "t"}
        for _ in range(rng.randint(1, 3)):
            name = "ce-" + rng.choice(ATTRS)
            value = rng.choice(["", "%", "%zz", "%C0%A0", "%FF", '"unterminated', "ok", "%41"])
            base[name] = value
        headers.update(base)
        body = rng.randbytes(rng.randrange(0, 50))
    elif kind == 4:  # JSON that is not an event
        body = json.dumps(rng.choice([[], [1], {"a": 1}, "str", 1, None, [[]]])).encode()
        headers["Content-Type"] = rng.choice(
            ["application/cloudevents+json", "application/cloudevents-batch+json"]
        )
    else:  # truncated valid event
        full = structured(order())["data"]
        body = full[: rng.randrange(len(full))]
        headers["Content-Type"] = "application/cloudevents+json"
    return {"data": body, "headers": headers}


async def test_malformed_requests_get_4xx_problems_never_5xx(start: Start) -> None:
    gw = await start([{"name": "all", "sink": "{sink}/all"}],
                     gateway={"validation": {"unknown_types": "reject"}})
    rng = random.Random(20261122)
    statuses: dict[int, int] = {}

    async def one(spec: dict[str, Any]) -> None:
        resp = await gw.post(**spec)
        await resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500, (spec, await resp.text())
        if resp.status >= 400:
            assert resp.content_type == "application/problem+json", spec
            problem = await resp.json()
            assert problem["status"] == resp.status

    specs = [request(rng) for _ in range(3000)]
    for i in range(0, len(specs), 50):
        await asyncio.gather(*(one(s) for s in specs[i : i + 50]))
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 2500, statuses
    assert (await gw.client.get("/healthz")).status == 200
    assert (await gw.client.get("/readyz")).status == 200
    good = order()
    assert (await gw.post(**structured(good))).status == 202
    await gw.subscriber.wait_for_id("/all", good.get_id())
