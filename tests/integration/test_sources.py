"""POST /sources/<name> end to end: the real app, real subscribers, requests signed by the tests
as each provider would sign them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import orjson
import pytest

from tests.integration.conftest import FAST_RETRY, ORDER_SCHEMA, Running, Start

PROBLEM = "application/problem+json"
SHOP_SECRET = "shop-secret"
GITHUB_SECRET = "gh-secret"
RAW_TOKEN = "raw-token"

ALL = [{"name": "all", "sink": "{sink}/all", "delivery": {"retry": FAST_RETRY}}]
SOURCES: list[dict[str, Any]] = [
    {
        "name": "shop",
        "verify": {
            "kind": "hmac",
            "header": "X-Shop-Signature",
            "prefix": "sha256=",
            "timestamp_header": "X-Shop-Timestamp",
            "signed": "{timestamp}.{body}",
            "tolerance": "5m",
            "secret": ["retired-secret", SHOP_SECRET],
        },
        "event": {
            "type": "com.example.order.{body.event}",
            "source": "https://shop.example/{body.store_id}",
            "id": "{headers.x-shop-delivery}",
            "subject": "{body.order.order_id}",
            "time": "{body.created_at}",
        },
    },
    {"name": "github", "preset": "github", "verify": {"secret": GITHUB_SECRET}},
    {
        "name": "raw",
        "path": "/hooks/raw",
        "verify": {"kind": "bearer", "secret": RAW_TOKEN},
        "event": {"type": "com.example.raw", "source": "/raw", "label": "{query.label}"},
    },
    {
        "name": "edge",
        "verify": {"kind": "none"},
        "event": {
            "type": "com.example.edge.{body.kind}",
            "source": ["{body.origin.url}", "/edge/{body.items.0.sku}"],
            "id": ["{body.id}", "{headers.x-request-id}"],
            "subject": "{body.items.1.sku}",
            "count": "{body.count}",
            "flag": "{body.flag}",
            "who": "{body.who}",
        },
    },
    {"name": "slack", "preset": "slack", "verify": {"secret": "slack-secret"}},
]


async def start_sources(start: Start, **kw: Any) -> Running:
    return await start(ALL, sources=SOURCES, **kw)


def shop_request(
    payload: dict[str, Any],
    delivery: str = "d-1",
    at: float | None = None,
    secret: str = SHOP_SECRET,
) -> dict[str, Any]:
    body = orjson.dumps(payload)
    stamp = str(int(time.time() if at is None else at))
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-Shop-Delivery": delivery,
        "X-Shop-Timestamp": stamp,
        "X-Shop-Signature": "sha256=" + signature.hexdigest(),
    }
    return {"data": body, "headers": headers}


ORDER = {
    "event": "created",
    "store_id": "eu-1",
    "created_at": "2024-05-01T10:00:00Z",
    "order": {"order_id": "o-1"},
    "order_id": "o-1",
    "amount": 1200,
}


async def test_a_signed_request_becomes_a_delivered_cloudevent(start: Start) -> None:
    gw = await start_sources(start)
    resp = await gw.post("/sources/shop", **shop_request(ORDER))
    assert resp.status == 202, await resp.text()
    assert await resp.json() == {"ids": ["d-1"], "duplicates": []}
    got = await gw.subscriber.wait_for_id("/all", "d-1")
    assert got.headers["ce-type"] == "com.example.order.created"
    assert got.headers["ce-source"] == "https://shop.example/eu-1"
    assert got.headers["ce-subject"] == "o-1"
    assert got.headers["ce-time"] == "2024-05-01T10:00:00Z"
    assert got.headers["ce-specversion"] == "1.0"
    assert got.headers["Content-Type"] == "application/json"
    assert got.body == orjson.dumps(ORDER)


@pytest.mark.parametrize(
    "change",
    [
        {"X-Shop-Signature": "sha256=" + "00" * 32},
        {"X-Shop-Signature": None},
        {"X-Shop-Timestamp": None},
        {"X-Shop-Timestamp": "1"},  # signed for another time
    ],
)
async def test_bad_or_missing_signatures_are_401_and_nothing_is_stored(
    start: Start, change: dict[str, str | None]
) -> None:
    gw = await start_sources(start)
    request = shop_request(ORDER)
    for key, value in change.items():
        if value is None:
            del request["headers"][key]
        else:
            request["headers"][key] = value
    resp = await gw.post("/sources/shop", **request)
    assert resp.status == 401
    assert resp.content_type == PROBLEM
    assert await gw.gateway.store.pending() == 0


async def test_a_wrong_secret_and_a_replay_are_refused(start: Start) -> None:
    gw = await start_sources(start)
    wrong = await gw.post("/sources/shop", **shop_request(ORDER, secret="guess"))
    assert wrong.status == 401
    replay = await gw.post("/sources/shop", **shop_request(ORDER, at=time.time() - 600))
    assert replay.status == 401
    assert "replay" in (await replay.json())["detail"]
    assert await gw.gateway.store.pending() == 0


async def test_refusals_log_the_source_and_reason_only(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await start_sources(start)
    caplog.set_level(logging.DEBUG)
    request = shop_request(ORDER, secret="guess")
    resp = await gw.post("/sources/shop", **request)
    assert resp.status == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused POST /sources/shop: 401" in logged
    assert "(sender=source shop)" in logged
    assert all(r.levelno == logging.INFO for r in caplog.records if "refused" in r.getMessage())
    for secret in (SHOP_SECRET, "guess", request["headers"]["X-Shop-Signature"][7:], "o-1"):
        assert secret not in logged


async def test_a_provider_retry_is_a_duplicate_and_delivered_once(start: Start) -> None:
    gw = await start_sources(start)
    first = await gw.post("/sources/shop", **shop_request(ORDER, delivery="d-7"))
    assert first.status == 202
    retry = await gw.post("/sources/shop", **shop_request(ORDER, delivery="d-7"))
    assert retry.status == 202
    assert await retry.json() == {"ids": ["d-7"], "duplicates": ["d-7"]}
    await gw.subscriber.wait_for_id("/all", "d-7")
    await asyncio.sleep(0.3)
    assert len(gw.subscriber.at("/all")) == 1


async def test_source_events_are_validated_against_their_schema(start: Start) -> None:
    gw = await start_sources(start, schemas={"com.example.order.created": ORDER_SCHEMA})
    resp = await gw.post("/sources/shop", **shop_request({**ORDER, "amount": -5}))
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["pointer"] == "/amount"
    assert await gw.gateway.store.pending() == 0


async def test_github_preset_end_to_end(start: Start) -> None:
    gw = await start_sources(start)
    payload = {"action": "opened", "pull_request": {"number": 42},
               "repository": {"html_url": "https://github.com/octo/hello"}}  # fmt: skip
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": "sha256="
        + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    resp = await gw.post("/sources/github", data=body, headers=headers)
    assert resp.status == 202, await resp.text()
    got = await gw.subscriber.wait_for_id("/all", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert got.headers["ce-type"] == "com.github.pull_request.opened"
    assert got.headers["ce-source"] == "https://github.com/octo/hello"
    assert got.headers["ce-subject"] == "42"
    assert got.body == body


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"a=1&b=%C3%A9&a=2"),
        ("text/plain; charset=utf-8", "Grüße 😀\n".encode()),
        ("application/xml", b'<?xml version="1.0"?><order id="o-1"/>'),
        ("application/octet-stream", bytes(range(256))),
        ("text/csv; charset=latin-1", b"caf\xe9;1\r\n"),
    ],
)
async def test_other_bodies_arrive_byte_exact_with_their_content_type(
    start: Start, content_type: str, body: bytes
) -> None:
    gw = await start_sources(start)
    resp = await gw.post(
        "/hooks/raw?access_token=" + RAW_TOKEN + "&label=L1",
        data=body,
        headers={"Content-Type": content_type},
    )
    assert resp.status == 202, await resp.text()
    [event_id] = (await resp.json())["ids"]
    got = await gw.subscriber.wait_for_id("/all", event_id)
    assert got.body == body
    assert got.headers["Content-Type"] == content_type
    assert got.headers["ce-type"] == "com.example.raw"
    assert got.headers["ce-label"] == "L1"


async def test_bearer_sources_need_the_token(start: Start) -> None:
    gw = await start_sources(start)
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = await gw.post("/hooks/raw", data=b"x", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    ok = await gw.post("/hooks/raw", data=b"x", headers={"Authorization": f"Bearer {RAW_TOKEN}"})
    assert ok.status == 202
    # The configured path replaces the default one.
    assert (await gw.post("/sources/raw", data=b"x")).status == 404


async def test_unknown_sources_and_methods(start: Start) -> None:
    gw = await start_sources(start)
    resp = await gw.post("/sources/nope", data=b"{}")
    assert resp.status == 404
    assert resp.content_type == PROBLEM
    assert "nope" in (await resp.json())["detail"]
    get = await gw.client.get("/sources/shop")
    assert get.status == 405


async def test_options_answers_the_webhook_handshake(start: Start) -> None:
    gw = await start_sources(start)
    resp = await gw.client.options(
        "/sources/shop", headers={"WebHook-Request-Origin": "shop.example"}
    )
    assert resp.status == 200
    assert resp.headers["WebHook-Allowed-Origin"] == "shop.example"
    assert resp.headers["WebHook-Allowed-Rate"] == "*"
    assert "POST" in resp.headers["Allow"]


async def test_bodies_over_the_limit_are_413(start: Start) -> None:
    gw = await start_sources(start, gateway={"server": {"max_body_bytes": 64}})
    resp = await gw.post("/sources/edge", data=b"{" + b" " * 100 + b"}",
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status == 413
    assert await gw.gateway.store.pending() == 0


async def test_slack_url_verification_is_answered_without_an_event(start: Start) -> None:
    gw = await start_sources(start)
    body = b'{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",' \
           b'"type":"url_verification"}'  # fmt: skip
    stamp = str(int(time.time()))
    base = f"v0:{stamp}:".encode() + body
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + hmac.new(b"slack-secret", base, hashlib.sha256).hexdigest(),
    }
    resp = await gw.post("/sources/slack", data=body, headers=headers)
    assert resp.status == 200
    assert (await resp.json())["challenge"].startswith("3eZbrw1a")
    assert await gw.gateway.store.pending() == 0
    headers["X-Slack-Signature"] = "v0=" + "00" * 32
    assert (await gw.post("/sources/slack", data=body, headers=headers)).status == 401


# Template edge cases: the `edge` source reads nested paths, list indexes and scalars.
EDGE = {"kind": "k", "id": "e-1", "items": [{"sku": "A-1"}, {"sku": "B-2"}]}


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (EDGE, {}, {"ce-id": "e-1", "ce-source": "/edge/A-1", "ce-subject": "B-2"}),
        ({**EDGE, "origin": {"url": "https://o.example/x"}}, {},
         {"ce-source": "https://o.example/x"}),
        ({**EDGE, "items": [{"sku": "A-1"}]}, {}, {"ce-subject": None}),  # optional: omitted
        ({**EDGE, "id": None}, {"X-Request-Id": "r-9"}, {"ce-id": "r-9"}),
        ({**EDGE, "id": 12345}, {}, {"ce-id": "12345"}),
        ({**EDGE, "count": 7, "flag": True}, {}, {"ce-count": "7", "ce-flag": "true"}),
        ({**EDGE, "count": 2.5}, {}, {"ce-count": "2.5"}),
        ({**EDGE, "who": "Zoë 😀", "kind": "ü"}, {},
         {"ce-who": "Zo%C3%AB%20%F0%9F%98%80", "ce-type": "com.example.edge.%C3%BC"}),
        ({**EDGE, "who": {"a": 1}}, {}, {"ce-who": None}),  # an object: left out
    ],
)  # fmt: skip
async def test_template_edge_cases(
    start: Start, body: dict[str, Any], headers: dict[str, str], expected: dict[str, str | None]
) -> None:
    gw = await start_sources(start)
    resp = await gw.post("/sources/edge", data=orjson.dumps(body),
                         headers={"Content-Type": "application/json", **headers})  # fmt: skip
    assert resp.status == 202, await resp.text()
    [event_id] = (await resp.json())["ids"]
    got = await gw.subscriber.wait_for_id("/all", event_id)
    for name, value in expected.items():
        assert got.headers.get(name) == value, name


@pytest.mark.parametrize(
    ("body", "content_type", "pointers"),
    [
        ({"id": "e-1", "items": [{"sku": "A"}]}, "application/json", ["/body/kind"]),
        ({"kind": "k", "id": "e-1", "items": []}, "application/json",
         ["/body/origin/url", "/body/items/0/sku"]),
        ({"kind": "k", "items": [{"sku": "A"}]}, "application/json",
         ["/body/id", "/headers/x-request-id"]),
        ({"kind": {"nested": 1}, "id": "e-1", "items": [{"sku": "A"}]}, "application/json",
         ["/body/kind"]),
        ({"kind": "k"}, "text/plain",
         ["/body/kind", "/body/origin/url", "/body/items/0/sku", "/body/id",
          "/headers/x-request-id"]),
    ],
)  # fmt: skip
async def test_unresolvable_required_references_are_422_naming_them(
    start: Start, body: dict[str, Any], content_type: str, pointers: list[str]
) -> None:
    gw = await start_sources(start)
    resp = await gw.post("/sources/edge", data=orjson.dumps(body),
                         headers={"Content-Type": content_type})  # fmt: skip
    assert resp.status == 422
    assert resp.content_type == PROBLEM
    problem = await resp.json()
    assert sorted(e["pointer"] for e in problem["errors"]) == sorted(pointers)
    for error in problem["errors"]:
        reference = "{" + error["pointer"][1:].replace("/", ".") + "}"
        assert reference in error["detail"]
        assert reference in problem["detail"]
    assert await gw.gateway.store.pending() == 0


async def test_invalid_templated_values_and_bodies_are_400(start: Start) -> None:
    gw = await start_sources(start)
    bad_uri = {**EDGE, "origin": {"url": "not a uri"}}
    resp = await gw.post("/sources/edge", data=orjson.dumps(bad_uri),
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status == 400
    assert "source" in (await resp.json())["detail"]
    broken = await gw.post("/sources/edge", data=b"{nope",
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert broken.status == 400
    assert await gw.gateway.store.pending() == 0


async def test_backlog_over_high_water_answers_429_after_verification(start: Start) -> None:
    gw = await start(
        [{"name": "slow", "sink": "{sink}/slow", "delivery": {"timeout": "5s"}}],
        gateway={"dispatch": {"backlog_high_water": 1, "poll_interval": "100ms"},
                 "server": {"shutdown_grace": "100ms"}},
        sources=SOURCES,
    )  # fmt: skip
    gw.subscriber.plan("/slow", "hang")
    assert (await gw.post("/sources/shop", **shop_request(ORDER, delivery="d-1"))).status == 202
    unsigned = await gw.post("/sources/shop", **shop_request(ORDER, secret="guess"))
    assert unsigned.status == 401  # credentials first: the backlog is not told to strangers
    refused = await gw.post("/sources/shop", **shop_request(ORDER, delivery="d-2"))
    assert refused.status == 429
    assert refused.content_type == PROBLEM
    assert int(refused.headers["Retry-After"]) > 0
