"""POST /events end to end: the real app, real subscribers, events built with the SDK."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import orjson
import pytest

from tests.integration.conftest import FAST_RETRY, Start
from tests.integration.events import ORDER, binary, order, received_event, structured

ALL = [{"name": "all", "sink": "{sink}/all", "delivery": {"retry": FAST_RETRY}}]
PROBLEM = "application/problem+json"


async def test_structured_event_is_stored_then_delivered_in_binary_mode(start: Start) -> None:
    gw = await start(ALL)
    event = order(
        subject="Euro € 😀", traceparent="00-0af7651916cd43dd8448eb211c80319c-b9c7c989f97918e1-01"
    )
    resp = await gw.post(**structured(event))
    assert resp.status == 202, await resp.text()
    assert await resp.json() == {"ids": [event.get_id()], "duplicates": []}

    [got] = await gw.subscriber.wait_for("/all", 1)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["ce-subject"] == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    delivered = received_event(got)
    assert delivered.get_attributes() == event.get_attributes()
    assert delivered.get_data() == event.get_data()
    assert got.headers["ce-time"] == event.get_attributes()["time"].isoformat().replace(
        "+00:00", "Z"
    )


async def test_binary_event_keeps_data_byte_for_byte(start: Start) -> None:
    gw = await start([{"name": "s", "sink": "{sink}/s", "delivery": {"mode": "structured"}}])
    payload = bytes(range(256))
    resp = await gw.post(
        data=payload,
        headers={
            "ce-specversion": "1.0",
            "ce-id": "bin-1",
            "ce-source": "%2Fdevices%2F%C3%A9",
            "ce-type": "com.example.blob",
            "ce-time": "2024-01-02T03:04:05.123456789+01:00",
            "ce-count": "7",
            "Content-Type": "application/octet-stream",
        },
    )
    assert resp.status == 202, await resp.text()
    [got] = await gw.subscriber.wait_for("/s", 1)
    assert got.headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    body = json.loads(got.body)
    assert base64.b64decode(body["data_base64"]) == payload
    assert body["source"] == "/devices/é"
    assert body["time"] == "2024-01-02T03:04:05.123456789+01:00"  # not reformatted
    assert body["count"] == "7"
    assert body["datacontenttype"] == "application/octet-stream"
    assert received_event(got).get_data() == payload


async def test_batch_is_accepted_whole_and_each_event_delivered(start: Start) -> None:
    gw = await start(ALL)
    events = [order() for _ in range(3)]
    body = orjson.dumps([json.loads(structured(e)["data"]) for e in events])
    resp = await gw.post(
        data=body, headers={"Content-Type": "Application/CloudEvents-Batch+JSON; charset=UTF-8"}
    )
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["ids"] == [e.get_id() for e in events]
    got = await gw.subscriber.wait_for("/all", 3)
    assert sorted(r.headers["ce-id"] for r in got) == sorted(e.get_id() for e in events)


async def test_one_bad_event_rejects_the_whole_batch(start: Start) -> None:
    gw = await start(ALL)
    good = json.loads(structured(order())["data"])
    bad = json.loads(structured(order(amount=-5))["data"])
    resp = await gw.post(
        data=orjson.dumps([good, bad]),
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert resp.status == 422
    assert resp.content_type == PROBLEM
    problem = await resp.json()
    assert problem["index"] == 1
    assert problem["errors"][0]["pointer"] == "/amount"
    assert await gw.gateway.store.pending() == 0
    await asyncio.sleep(0.3)
    assert gw.subscriber.at("/all") == []


async def test_mixed_specversions_in_a_batch_are_refused(start: Start) -> None:
    gw = await start(ALL)
    first = json.loads(structured(order())["data"])
    second = {**json.loads(structured(order())["data"]), "specversion": "0.3"}
    resp = await gw.post(
        data=orjson.dumps([first, second]),
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert resp.status == 400
    assert (await resp.json())["index"] == 1


async def test_schema_violations_are_all_listed_with_pointers(start: Start) -> None:
    gw = await start(ALL)
    event = order()
    message = structured(event)
    doc = json.loads(message["data"])
    doc["data"] = {"amount": "ten", "currency": "XXX"}
    resp = await gw.post(data=orjson.dumps(doc), headers=message["headers"])
    assert resp.status == 422
    assert resp.content_type == PROBLEM
    pointers = {e["pointer"] for e in (await resp.json())["errors"]}
    assert {"/amount", "/currency"} <= pointers
    assert any(e["pointer"] in ("", "/") or "order_id" in e["detail"]
               for e in (await resp.json())["errors"])


async def test_unknown_types_can_be_rejected(start: Start) -> None:
    gw = await start(ALL, gateway={"validation": {"unknown_types": "reject"}})
    event = order(type="com.example.unknown")
    resp = await gw.post(**structured(event))
    assert resp.status == 422
    assert "com.example.unknown" in (await resp.json())["detail"]
    accepted = await gw.post(**structured(order()))
    assert accepted.status == 202


async def test_duplicates_are_answered_202_and_not_delivered_again(start: Start) -> None:
    gw = await start(ALL)
    event = order()
    first = await gw.post(**structured(event))
    assert first.status == 202
    again = await gw.post(**binary(event))
    assert again.status == 202
    assert await again.json() == {"ids": [event.get_id()], "duplicates": [event.get_id()]}
    await gw.subscriber.wait_for("/all", 1)
    await asyncio.sleep(0.3)
    assert len(gw.subscriber.at("/all")) == 1


async def test_routing_by_types_source_and_filters(start: Start) -> None:
    gw = await start([
        {"name": "orders", "sink": "{sink}/orders", "types": [ORDER]},
        {"name": "eu", "sink": "{sink}/eu",
         "filters": [{"any": [{"exact": {"subject": "eu"}}, {"suffix": {"subject": "-eu"}}]}]},
        {"name": "other", "sink": "{sink}/other", "source": "/elsewhere"},
    ])
    await gw.post(**structured(order(subject="fr-eu")))
    await gw.post(**structured(order(subject="us")))
    await gw.subscriber.wait_for("/orders", 2)
    await gw.subscriber.wait_for("/eu", 1)
    await asyncio.sleep(0.2)
    assert len(gw.subscriber.at("/eu")) == 1
    assert gw.subscriber.at("/other") == []


async def test_error_statuses_are_problem_json(start: Start) -> None:
    gw = await start(ALL, gateway={"server": {"max_body_bytes": 2000}})
    too_big = await gw.post(
        data=b"x" * 5000, headers={"Content-Type": "application/cloudevents+json"}
    )
    assert too_big.status == 413
    assert too_big.content_type == PROBLEM
    avro = await gw.post(data=b"\x00", headers={"Content-Type": "application/cloudevents+avro"})
    assert avro.status == 415
    assert avro.content_type == PROBLEM
    broken = await gw.post(data=b"{", headers={"Content-Type": "application/cloudevents+json"})
    assert broken.status == 400
    problem = await broken.json()
    assert set(problem) >= {"type", "title", "status", "detail"}
    no_ce = await gw.post(data=b"{}", headers={"Content-Type": "application/json"})
    assert no_ce.status == 400
    bad_header = await gw.post(
        headers={"ce-specversion": "1.0", "ce-id": "%C0%A0", "ce-source": "/s", "ce-type": "t"}
    )
    assert bad_header.status == 400
    wrong_method = await gw.client.get("/events")
    assert wrong_method.status == 405


async def test_options_answers_the_abuse_protection_handshake(start: Start) -> None:
    gw = await start(ALL)
    resp = await gw.client.options(
        "/events",
        headers={"WebHook-Request-Origin": "producer.example.com", "WebHook-Request-Rate": "120"},
    )
    assert resp.status == 200
    assert resp.headers["WebHook-Allowed-Origin"] == "producer.example.com"
    assert resp.headers["WebHook-Allowed-Rate"] in ("*", "120")
    assert "POST" in resp.headers["Allow"]


async def test_backlog_over_high_water_answers_429(start: Start) -> None:
    gw = await start(
        [{"name": "slow", "sink": "{sink}/slow", "delivery": {"timeout": "5s"}}],
        gateway={"dispatch": {"backlog_high_water": 2, "poll_interval": "100ms"}},
    )
    gw.subscriber.plan("/slow", "hang")
    for _ in range(2):
        assert (await gw.post(**structured(order()))).status == 202
    refused = await gw.post(**structured(order()))
    assert refused.status == 429
    assert refused.content_type == PROBLEM
    assert int(refused.headers["Retry-After"]) > 0


async def test_health_readiness_and_metrics(start: Start) -> None:
    gw = await start(ALL)
    assert (await gw.client.get("/healthz")).status == 200
    assert (await gw.client.get("/readyz")).status == 200
    await gw.post(**structured(order()))
    await gw.subscriber.wait_for("/all", 1)
    text = await (await gw.client.get("/metrics")).text()
    assert "gateway_events_accepted_total 1.0" in text
    # the store's group commits, timed by the store through the callback given at assembly
    assert "# TYPE gateway_store_commit_seconds histogram" in text
    commits = next(line for line in text.splitlines()
                   if line.startswith("gateway_store_commit_seconds_count"))  # fmt: skip
    assert float(commits.split()[-1]) >= 1


async def test_store_unavailable_answers_503_with_retry_after(start: Start) -> None:
    gw = await start(ALL)
    await gw.gateway.store.close()
    resp = await gw.post(**structured(order()))
    assert resp.status == 503
    assert resp.content_type == PROBLEM
    assert int(resp.headers["Retry-After"]) > 0
    assert (await gw.client.get("/readyz")).status == 503


PRODUCERS = {"producers": [{"name": "shop", "token": ["old-token", "new-token"],
                            "sources": ["/shop", "/shop/*"], "types": ["com.example.order.*"]}]}


async def test_producers_need_a_known_token(start: Start) -> None:
    gw = await start(ALL, gateway=PRODUCERS)
    anonymous = await gw.post(**structured(order()))
    assert anonymous.status == 401
    assert anonymous.content_type == PROBLEM
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = structured(order())
    wrong["headers"]["Authorization"] = "Bearer nope"
    assert (await gw.post(**wrong)).status == 401
    for token in ("old-token", "new-token"):  # rotation: either token works
        ok = structured(order())
        ok["headers"]["Authorization"] = f"Bearer {token}"
        assert (await gw.post(**ok)).status == 202
    # CE webhook spec 3: the token may come as the access_token query parameter.
    by_query = await gw.post("/events?access_token=new-token", **structured(order()))
    assert by_query.status == 202


async def test_producers_may_publish_only_their_sources_and_types(start: Start) -> None:
    gw = await start(ALL, gateway=PRODUCERS)
    auth = {"Authorization": "Bearer new-token"}
    for event in (order(source="/billing"), order(type="com.example.invoice.paid")):
        message = structured(event)
        message["headers"].update(auth)
        refused = await gw.post(**message)
        assert refused.status == 403
        assert refused.content_type == PROBLEM
    message = structured(order(source="/shop/eu"))
    message["headers"].update(auth)
    assert (await gw.post(**message)).status == 202
    assert await gw.gateway.store.pending() == 1


async def test_unknown_paths_are_problem_json_404(start: Start) -> None:
    gw = await start(ALL)
    resp = await gw.post("/sources/nope", data=b"{}")
    assert resp.status == 404
    assert resp.content_type == PROBLEM


async def test_a_batch_with_one_foreign_event_is_refused_whole(start: Start) -> None:
    gw = await start(ALL, gateway=PRODUCERS)
    events = [order(), order(source="/billing"), order()]
    resp = await gw.post(
        data=orjson.dumps([json.loads(structured(e)["data"]) for e in events]),
        headers={"Content-Type": "application/cloudevents-batch+json",
                 "Authorization": "Bearer old-token"},
    )
    assert resp.status == 403
    problem = await resp.json()
    assert problem["index"] == 1
    assert "source" in problem["detail"]
    assert await gw.gateway.store.pending() == 0


async def test_the_producer_attribute_is_stamped_and_cannot_be_forged(start: Start) -> None:
    gw = await start(ALL, gateway={**PRODUCERS, "producer_attribute": "producer"})
    forged = order(producer="billing")  # the producer claims to be someone else
    message = structured(forged)
    message["headers"]["Authorization"] = "Bearer new-token"
    assert (await gw.post(**message)).status == 202
    [got] = await gw.subscriber.wait_for("/all", 1)
    assert got.headers["ce-producer"] == "shop"


async def test_without_the_option_events_arrive_unchanged(start: Start) -> None:
    gw = await start(ALL, gateway=PRODUCERS)
    message = structured(order())
    message["headers"]["Authorization"] = "Bearer new-token"
    assert (await gw.post(**message)).status == 202
    [got] = await gw.subscriber.wait_for("/all", 1)
    assert "ce-producer" not in got.headers


# -- what a newcomer and an operator read in the log ------------------------------------------


async def test_refusals_are_logged_at_info_with_the_producer_never_a_token(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await start(ALL, gateway=PRODUCERS)
    caplog.set_level(logging.DEBUG, logger="gateway")
    wrong = structured(order())
    wrong["headers"]["Authorization"] = "Bearer not-a-token"
    assert (await gw.post(**wrong)).status == 401
    foreign = structured(order(source="/elsewhere"))
    foreign["headers"]["Authorization"] = "Bearer new-token"
    assert (await gw.post(**foreign)).status == 403
    lines = [r for r in caplog.records if r.getMessage().startswith("refused POST /events")]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    assert ": 401 " in lines[0].getMessage()
    assert ": 403 " in lines[1].getMessage()
    assert lines[1].getMessage().endswith("(sender=producer shop)")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("not-a-token", "new-token", "old-token"):
        assert secret not in logged


async def test_an_event_no_subscription_takes_is_logged_and_counted_by_type(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await start([{"name": "other", "sink": "{sink}/o", "types": ["com.example.other"]}])
    caplog.set_level(logging.DEBUG, logger="gateway")
    event = order()
    assert (await gw.post(**structured(event))).status == 202
    assert any(
        r.levelno == logging.DEBUG and "matched no subscription" in r.getMessage()
        and event.get_id() in r.getMessage()
        for r in caplog.records
    )
    metrics = await (await gw.client.get("/metrics")).text()
    assert f'gateway_events_unmatched_total{{type="{ORDER}"}} 1.0' in metrics


async def test_start_logs_a_summary(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    await start([*ALL, {"name": "two", "sink": "{sink}/2"}])
    assert "ready: 2 subscriptions (0 paused), 0 pending deliveries" in [
        r.getMessage() for r in caplog.records
    ]
