"""Hostile and careless input through the real app: every cause gets its 4xx problem+json, the
work per request stays bounded, and structured `data` leaves byte for byte as it came."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
import zlib
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from cloudevents.core.v1.event import CloudEvent

from gateway.limits import MAX_DEPTH
from gateway.schemas import MAX_VIOLATIONS
from tests.integration.conftest import FAST_RETRY, Running, Start
from tests.integration.events import binary, order, received_event, structured

PROBLEM = "application/problem+json"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
TOKEN = "shop-token"
ITEMS_TYPE = "com.example.items"
ITEMS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "quantity"],
                "additionalProperties": False,
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                },
            },
        },
        "tree": {},
    },
}
SOURCES: list[dict[str, Any]] = [
    {
        "name": "signed",
        "verify": {"kind": "hmac", "header": "X-Signature", "secret": "s3cret"},
        "event": {"type": ITEMS_TYPE, "source": "/signed"},
    },
    {
        "name": "open",
        "verify": {"kind": "none"},
        "event": {"type": ITEMS_TYPE, "source": "/open", "label": "{query.label}"},
    },
    {
        "name": "form",
        "verify": {"kind": "none"},
        "payload_field": "payload",
        "event": {"type": ITEMS_TYPE, "source": "/form"},
    },
]
BAD_ITEM = {"sku": 12345, "quantity": "many", "x": 1}  # three violations each


def subscriptions() -> list[dict[str, Any]]:
    return [
        {"name": mode, "sink": "{sink}/" + mode,
         "delivery": {"mode": mode, "retry": FAST_RETRY}}
        for mode in ("binary", "structured")
    ]  # fmt: skip


async def start_hostile(start: Start, **gateway: Any) -> Running:
    return await start(
        subscriptions(),
        gateway=gateway or None,
        schemas={"com.example.items": ITEMS_SCHEMA},
        sources=SOURCES,
    )


async def problem(resp: Any, status: int) -> dict[str, Any]:
    body = await resp.read()
    assert resp.status == status, body
    assert resp.content_type == PROBLEM
    doc: dict[str, Any] = json.loads(body)
    assert doc["status"] == status
    return doc


def envelope(data_text: bytes, **attrs: Any) -> bytes:
    head = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/t", "type": ITEMS_TYPE,
            **attrs}  # fmt: skip
    return orjson.dumps(head)[:-1] + b',"data":' + data_text + b"}"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


# -- finding 2: malformed input is a 4xx -------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_its_content_encoding_cannot_decode_is_400(
    start: Start, encoding: str
) -> None:
    gw = await start_hostile(start)
    event = order()
    resp = await gw.post(data=structured(event)["data"] + b"\x00garbage",
                         headers={"Content-Type": STRUCTURED, "Content-Encoding": encoding})
    assert resp.status == 400, await resp.text()
    assert resp.content_type == PROBLEM


async def test_a_bad_gzip_body_on_a_source_is_400_before_its_signature_is_checked(
    start: Start,
) -> None:
    gw = await start_hostile(start)
    resp = await gw.post("/sources/signed", data=b"this is not gzip",
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    doc = await problem(resp, 400)
    assert "Content-Encoding" in doc["detail"]


@pytest.mark.parametrize("compress", [gzip.compress, zlib.compress])
async def test_a_well_encoded_body_is_accepted(start: Start, compress: Any) -> None:
    gw = await start_hostile(start)
    event = order()
    encoding = "gzip" if compress is gzip.compress else "deflate"
    resp = await gw.post(data=compress(structured(event)["data"]),
                         headers={"Content-Type": STRUCTURED, "Content-Encoding": encoding})
    assert resp.status == 202, await resp.text()


async def raw_request(gw: Running, head: bytes, body: bytes = b"") -> tuple[int, bytes, bytes]:
    """One request written byte for byte (headers a client library would refuse to send)."""
    server = gw.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    headers, _, content = answer.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), headers, content


@pytest.mark.parametrize("token", [b"\xff", b"\xed\xa0\x80", b"\xc3\x28abc", b"caf\xc3\xa9"])
async def test_a_bearer_token_that_is_not_utf8_is_401(start: Start, token: bytes) -> None:
    gw = await start_hostile(start, producers=[{"name": "shop", "token": TOKEN}])
    message = binary(order())
    head = b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + b"\r\n"
    head += b"".join(f"{k}: {v}\r\n".encode() for k, v in message["headers"].items())
    status, headers, content = await raw_request(gw, head, message["data"])
    assert status == 401, content
    assert b"application/problem+json" in headers.lower()


async def test_a_deeply_nested_extension_is_400(start: Start) -> None:
    gw = await start_hostile(start)
    body = orjson.dumps({"specversion": "1.0", "id": "x", "source": "/t", "type": "t"})
    body = body[:-1] + b',"ext":' + nested(1000) + b"}"
    doc = await problem(await gw.post(data=body, headers={"Content-Type": STRUCTURED}), 400)
    assert f"deeper than {MAX_DEPTH} levels" in doc["detail"]


async def test_a_nested_extension_is_refused_without_quoting_it(start: Start) -> None:
    gw = await start_hostile(start)
    body = orjson.dumps({"specversion": "1.0", "id": "x", "source": "/t", "type": "t"})
    body = body[:-1] + b',"ext":' + nested(MAX_DEPTH - 1) + b"}"
    doc = await problem(await gw.post(data=body, headers={"Content-Type": STRUCTURED}), 400)
    assert "attribute 'ext'" in doc["detail"]
    assert "[[" not in doc["detail"]


# -- one depth limit on every path -------------------------------------------------------------


def deep_requests(depth: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The same data (nested `depth` deep) sent along every ingest path that parses JSON."""
    data = b'{"tree":' + nested(depth - 1) + b"}"
    event = orjson.loads(envelope(b"null"))
    event.pop("data")
    single = envelope(data)
    ce = {f"ce-{k}": str(v) for k, v in event.items()}
    return {
        "structured": ("/events", {"data": single, "headers": {"Content-Type": STRUCTURED}}),
        "batch": ("/events", {"data": b"[" + single + b"]", "headers": {"Content-Type": BATCH}}),
        "binary": ("/events", {"data": data,
                               "headers": {**ce, "Content-Type": "application/json"}}),
        "source": ("/sources/open", {"data": data,
                                     "headers": {"Content-Type": "application/json"}}),
        "form": ("/sources/form", {
            "data": urlencode({"payload": data.decode()}).encode(),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    }  # fmt: skip


@pytest.mark.parametrize("path", ["structured", "batch", "binary", "source", "form"])
async def test_one_depth_limit_on_every_ingest_path(start: Start, path: str) -> None:
    gw = await start_hostile(start)
    url, request = deep_requests(MAX_DEPTH)[path]
    resp = await gw.post(url, **request)
    assert resp.status == 202, await resp.text()
    url, request = deep_requests(MAX_DEPTH + 1)[path]
    doc = await problem(await gw.post(url, **request), 400)
    assert f"deeper than {MAX_DEPTH} levels" in doc["detail"]
    url, request = deep_requests(300)[path]
    await problem(await gw.post(url, **request), 400)


# -- bounded schema work -----------------------------------------------------------------------


async def test_a_422_lists_at_most_the_cap_and_says_it_was_cut(start: Start) -> None:
    gw = await start_hostile(start)
    data = orjson.dumps({"items": [BAD_ITEM] * 150})  # 450 violations, a few KB
    doc = await problem(await gw.post(data=envelope(data), headers={"Content-Type": STRUCTURED}),
                        422)  # fmt: skip
    assert len(doc["errors"]) == MAX_VIOLATIONS
    assert doc["truncated"] is True
    assert f"the first {MAX_VIOLATIONS} are listed" in doc["detail"]
    assert doc["errors"][0]["pointer"].startswith("/items/0")


async def test_a_422_with_few_violations_lists_them_all(start: Start) -> None:
    gw = await start_hostile(start)
    data = orjson.dumps({"items": [BAD_ITEM, {"sku": "a", "quantity": 2}]})
    doc = await problem(await gw.post(data=envelope(data), headers={"Content-Type": STRUCTURED}),
                        422)  # fmt: skip
    assert len(doc["errors"]) == 3
    assert "truncated" not in doc


async def test_large_invalid_data_is_answered_with_its_first_violation(start: Start) -> None:
    gw = await start_hostile(start)
    data = orjson.dumps({"items": [BAD_ITEM] * 20_500})  # ~800 KB, 61,500 violations
    doc = await problem(await gw.post(data=envelope(data), headers={"Content-Type": STRUCTURED}),
                        422)  # fmt: skip
    assert 1 <= len(doc["errors"]) <= MAX_VIOLATIONS
    assert doc["truncated"] is True
    assert doc["errors"][0]["pointer"].startswith("/items/0")
    assert len(await (await gw.client.get("/healthz")).read()) < 1000


async def test_a_binary_event_without_a_media_type_is_told_what_to_set(start: Start) -> None:
    gw = await start_hostile(start)
    # An SDK producer in binary mode that sets no datacontenttype sends no Content-Type.
    event = CloudEvent({"type": ITEMS_TYPE, "source": "/sdk", "id": "1"}, {"items": []})
    message = binary(event)
    assert "content-type" not in {k.lower() for k in message["headers"]}
    resp = await gw.client.post("/events", data=message["data"], headers=message["headers"],
                                skip_auto_headers=["Content-Type"])  # fmt: skip
    doc = await problem(resp, 422)
    detail = doc["errors"][0]["detail"]
    assert "Content-Type" in detail
    assert "datacontenttype" in detail


# -- finding 6: attribute sizes ----------------------------------------------------------------


async def test_an_attribute_over_the_limit_is_400_in_every_mode(start: Start) -> None:
    gw = await start_hostile(start)
    big = "x" * 4097
    event = order(big=big)
    for message in (structured(event), binary(event)):
        doc = await problem(await gw.post(**message), 400)
        assert "limits.max_attribute_bytes" in doc["detail"]
    resp = await gw.post("/sources/open?" + urlencode({"label": big}), data=b"{}",
                         headers={"Content-Type": "application/json"})
    assert "limits.max_attribute_bytes" in (await problem(resp, 400))["detail"]
    fits = order(big="x" * 4096)
    assert (await gw.post(**structured(fits))).status == 202


async def test_a_value_is_measured_as_its_percent_encoded_header(start: Start) -> None:
    gw = await start_hostile(start)
    # 1,500 characters, 3,000 bytes of UTF-8, 9,000 bytes once percent-encoded.
    doc = await problem(await gw.post(**structured(order(text="é" * 1500))), 400)
    assert "9000 bytes" in doc["detail"]


async def test_attributes_over_the_total_are_400(start: Start) -> None:
    gw = await start_hostile(start)
    event = order(a="x" * 3000, b="y" * 3000, c="z" * 3000)
    doc = await problem(await gw.post(**structured(event)), 400)
    assert "limits.max_attributes_bytes" in doc["detail"]


async def test_the_limits_are_configurable(start: Start) -> None:
    gw = await start_hostile(start, limits={"max_attribute_bytes": 6000,
                                            "max_attributes_bytes": 20000})  # fmt: skip
    event = order(a="x" * 5000, b="y" * 5000)
    assert (await gw.post(**structured(event))).status == 202
    await gw.subscriber.wait_for_id("/binary", event.get_id())


async def test_a_batch_names_the_event_over_the_limit(start: Start) -> None:
    gw = await start_hostile(start)
    items = [json.loads(structured(order())["data"]),
             json.loads(structured(order(big="x" * 5000))["data"])]  # fmt: skip
    resp = await gw.post(data=json.dumps(items), headers={"Content-Type": BATCH})
    assert (await problem(resp, 400))["index"] == 1


# -- finding 3: structured data byte for byte --------------------------------------------------

DATA_TEXTS = [
    b"12345678901234567890123",
    b"18446744073709551616",
    b"-0",
    b"1E2",
    b'{"n": 12345678901234567890123, "z": -0, "e": 1E2, "f": 1.50, "s": "\\u00e9\\/"}',
    b"[1.0, -0.0, 1e-7, 0.1000000000000000055511151231257827]",
    b'"text with \\"quotes\\""',
    b"null",
]


@pytest.mark.parametrize("text", DATA_TEXTS)
async def test_structured_data_is_delivered_byte_for_byte(start: Start, text: bytes) -> None:
    gw = await start(subscriptions())
    body = envelope(text, type="com.example.any", datacontenttype="application/json")
    event_id = json.loads(body)["id"]
    assert (await gw.post(data=body, headers={"Content-Type": STRUCTURED})).status == 202
    delivered = await gw.subscriber.wait_for_id("/binary", event_id)
    assert delivered.body == text
    (got,) = await gw.subscriber.wait_for("/structured", 1)
    assert got.body.endswith(b'"data":' + text + b"}")
    assert received_event(got).get_data() == json.loads(text)


async def test_batch_data_is_delivered_byte_for_byte(start: Start) -> None:
    gw = await start(subscriptions())
    first, second = b'{"big": 18446744073709551616}', b"[ -0 , 1E2 ]"
    body = b"[" + envelope(first, type="t") + b" ,\n " + envelope(second, type="t") + b"]"
    assert (await gw.post(data=body, headers={"Content-Type": BATCH})).status == 202
    received = await gw.subscriber.wait_for("/binary", 2)
    assert sorted(r.body for r in received) == sorted([first, second])


async def test_data_in_the_middle_of_the_event_keeps_its_text(start: Start) -> None:
    gw = await start(subscriptions())
    body = b'{"specversion":"1.0", "data" :\n [1E2, {"a" : -0}]  , "id":"mid","source":"/t",' \
        b'"type":"t"}'
    assert (await gw.post(data=body, headers={"Content-Type": STRUCTURED})).status == 202
    delivered = await gw.subscriber.wait_for_id("/binary", "mid")
    assert delivered.body == b'[1E2, {"a" : -0}]'
