"""Batch delivery (CONTRACT 5, `delivery.mode: batch`) to real subscribers: the body, the
limits, the linger, retries of a whole batch under one webhook-id, signatures, dead letters,
and the real `gateway serve` process."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks import Webhook

from tests.integration.conftest import FAST_RETRY, Start, write_deployment
from tests.integration.events import binary, order, received_event, structured
from tests.integration.process import Process, free_port
from tests.integration.subscriber import Received, Subscriber
from tests.unit.test_store_contract import postgres_schema

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BATCH_TYPE = "application/cloudevents-batch+json; charset=utf-8"


def sub(name: str, batch: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    delivery = {"mode": "batch", "timeout": "2s", "retry": dict(FAST_RETRY),
                "batch": {"max_events": 100, "linger": "20ms", **(batch or {})}}  # fmt: skip
    return {"name": name, "sink": f"{{sink}}/{name}", "delivery": delivery, **more}


def events_of(got: Received) -> list[CloudEvent]:
    """The batch as the CloudEvents SDK reads each structured event of it (CE JSON format 4)."""
    items = json.loads(got.body)
    assert isinstance(items, list)
    return [JSONFormat().read(CloudEvent, json.dumps(item)) for item in items]


async def publish(gw: Any, events: list[CloudEvent]) -> None:
    for event in events:
        assert (await gw.post(**structured(event))).status == 202


async def all_events(subscriber: Subscriber, path: str, count: int) -> list[CloudEvent]:
    """Every event received at `path` once `count` different events have arrived there."""

    def got() -> int:
        return len({item["id"] for r in subscriber.at(path) for item in json.loads(r.body)})

    await subscriber.until(lambda: got() >= count, 10.0, f"{count} events at {path}")
    return [event for r in subscriber.at(path) for event in events_of(r)]


async def test_a_batch_is_a_json_array_of_structured_events_the_sdk_reads(start: Start) -> None:
    gw = await start([sub("b", {"linger": "300ms"}, headers={"X-Team": "t"},
                          auth={"bearer": "tok"})])  # fmt: skip
    sent = [order(amount=i, subject=f"s{i}", partitionkey="k") for i in range(3)]
    raw = CloudEvent({"type": "com.example.blob", "source": "/files", "id": "bin-1",
                      "datacontenttype": "application/octet-stream"}, b"\x00\xffbytes")  # fmt: skip
    await publish(gw, sent)
    assert (await gw.post(**binary(raw))).status == 202
    (got,) = await gw.subscriber.wait_for("/b", 1)
    assert got.headers["Content-Type"] == BATCH_TYPE
    assert got.headers["X-Team"] == "t"
    assert got.headers["Authorization"] == "Bearer tok"
    assert "ce-id" not in {name.lower() for name in got.headers}
    received = events_of(got)
    assert [e.get_id() for e in received] == [e.get_id() for e in [*sent, raw]]
    for before, after in zip([*sent, raw], received, strict=True):
        assert after.get_attributes() == before.get_attributes()
        assert after.get_data() == before.get_data()
    assert b'"data_base64"' in got.body  # binary data travels base64 (JSON format 3.1)
    await asyncio.sleep(0.2)
    assert len(gw.subscriber.at("/b")) == 1
    assert await gw.gateway.store.pending() == 0


async def test_max_events_and_max_bytes_bound_every_request(start: Start) -> None:
    gw = await start([sub("few", {"max_events": 4}), sub("small", {"max_bytes": 1000})])
    events = [order(f"e{i:02d}") for i in range(10)]
    big = CloudEvent({"type": "com.example.blob", "source": "/files", "id": "big"}, "x" * 3000)
    await publish(gw, [*events, big])
    few = await all_events(gw.subscriber, "/few", 11)
    small = await all_events(gw.subscriber, "/small", 11)
    assert sorted(e.get_id() for e in few) == sorted(e.get_id() for e in small)
    assert len({e.get_id() for e in few}) == 11
    assert all(len(json.loads(r.body)) <= 4 for r in gw.subscriber.at("/few"))
    for got in gw.subscriber.at("/small"):
        count = len(json.loads(got.body))
        assert len(got.body) <= 1000 or count == 1  # a larger event goes alone, never dropped
    assert any(json.loads(r.body)[0]["id"] == "big" for r in gw.subscriber.at("/small"))
    assert len(gw.subscriber.at("/small")) >= 3


async def test_a_lone_event_still_goes_after_the_linger(start: Start) -> None:
    gw = await start([sub("lone", {"max_events": 50, "linger": "50ms"})])
    event = order()
    await publish(gw, [event])
    (got,) = await gw.subscriber.wait_for("/lone", 1)
    assert [e.get_id() for e in events_of(got)] == [event.get_id()]


async def test_a_failed_batch_is_retried_whole_under_one_signed_webhook_id(start: Start) -> None:
    gw = await start([sub("b", {"linger": "300ms"}, signing={"secret": SECRET})])
    gw.subscriber.plan("/b", 503, ("retry-after", 503, "0"), 200)
    await publish(gw, [order(f"r{i}") for i in range(5)])
    first, second, third = await gw.subscriber.wait_for("/b", 3)
    assert len({got.headers["webhook-id"] for got in (first, second, third)}) == 1
    assert first.body == second.body == third.body
    for got in (first, second, third):
        Webhook(SECRET).verify(got.body, got.headers)  # the Standard Webhooks reference library
    assert [e.get_id() for e in events_of(third)] == [f"r{i}" for i in range(5)]
    await asyncio.sleep(0.2)
    assert len(gw.subscriber.at("/b")) == 3
    assert await gw.gateway.store.pending() == 0
    # Two batches are two messages.
    await publish(gw, [order("later")])
    fourth = (await gw.subscriber.wait_for("/b", 4))[3]
    assert fourth.headers["webhook-id"] != first.headers["webhook-id"]


async def test_an_exhausted_batch_dead_letters_each_event_on_its_own(start: Start) -> None:
    spec = sub("b", {"linger": "300ms"})
    spec["delivery"]["dead_letter"] = "{sink}/dead"
    gw = await start([spec])
    gw.subscriber.plan("/b", 500)
    sent = [order(f"d{i}") for i in range(3)]
    await publish(gw, sent)
    dead = await gw.subscriber.wait_for("/dead", 3)
    assert len(gw.subscriber.at("/b")) == FAST_RETRY["max_attempts"]  # one request per attempt
    notices = [received_event(got) for got in dead]
    assert sorted(e.get_id() for e in notices) == ["d0", "d1", "d2"]
    for notice in notices:
        assert notice.get_extension("deadletterreason") == "exhausted"
        assert notice.get_extension("deadletterattempts") == FAST_RETRY["max_attempts"]
        assert notice.get_extension("deadletterstatus") == 500
    assert all(got.headers["Content-Type"].startswith("application/cloudevents+json")
               for got in dead)  # fmt: skip
    assert len(await gw.gateway.store.dead_letters("b", 10)) == 3


async def test_410_dead_letters_the_batch_and_pauses(start: Start) -> None:
    gw = await start([sub("b", {"linger": "200ms"})])
    gw.subscriber.plan("/b", 410)
    await publish(gw, [order("g1"), order("g2")])
    await gw.subscriber.wait_for("/b", 1)
    for _ in range(100):
        if len(await gw.gateway.store.dead_letters("b", 10)) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(await gw.gateway.store.dead_letters("b", 10)) == 2
    assert "b" in gw.gateway.dispatcher.paused


async def test_the_breaker_and_the_rate_limit_see_one_attempt_per_batch(start: Start) -> None:
    spec = sub("b", {"linger": "300ms"})
    spec["delivery"].update(circuit_breaker={"failures": 2, "cooldown": "1m"}, rate_limit="2/s")
    gw = await start([spec])
    gw.subscriber.plan("/b", 503)
    await publish(gw, [order(f"o{i}") for i in range(6)])
    await gw.subscriber.wait_for("/b", 2)  # two failed batches open it
    for _ in range(100):
        if gw.gateway.dispatcher.breaker_open("b"):
            break
        await asyncio.sleep(0.02)
    assert gw.gateway.dispatcher.breaker_open("b")
    await asyncio.sleep(0.3)
    assert len(gw.subscriber.at("/b")) == 2
    assert all(len(json.loads(r.body)) == 6 for r in gw.subscriber.at("/b"))
    assert await gw.gateway.store.pending() == 6  # kept, never dead-lettered by the breaker
    assert await gw.gateway.store.dead_letters("b", 10) == []


async def test_batches_from_the_real_gateway_process(
    tmp_path: Path, subscriber: tuple[Subscriber, str], processes: list[Process]
) -> None:
    recorder, base = subscriber
    spec = sub("proc", {"max_events": 3, "linger": "100ms"}, signing={"secret": SECRET})
    config = write_deployment(tmp_path, [json.loads(json.dumps(spec).replace("{sink}", base))],
                              {"server": {"port": (port := free_port())}})  # fmt: skip
    gateway = Process(config, port, tmp_path / "gateway.log")
    processes.append(gateway)
    await gateway.start()
    recorder.plan("/proc", 503, 200)
    sent = [order(f"p{i}") for i in range(7)]
    async with aiohttp.ClientSession() as http:
        for event in sent:
            async with http.post(f"{gateway.url}/events", **structured(event)) as resp:
                assert resp.status == 202
    received = await all_events(recorder, "/proc", 7)
    assert sorted({e.get_id() for e in received}) == sorted(e.get_id() for e in sent)
    first = recorder.at("/proc")[0]  # answered 503: sent again, the same batch
    msg = first.headers["webhook-id"]
    again = [r for r in recorder.at("/proc")[1:] if r.headers["webhook-id"] == msg]
    assert [r.body for r in again] == [first.body]
    for got in recorder.at("/proc"):
        assert got.headers["Content-Type"] == BATCH_TYPE
        assert len(json.loads(got.body)) <= 3
        Webhook(SECRET).verify(got.body, got.headers)


async def test_a_batch_keeps_its_events_and_webhook_id_across_a_crash(
    tmp_path: Path, subscriber: tuple[Subscriber, str], processes: list[Process]
) -> None:
    recorder, base = subscriber
    spec = sub("crash", {"max_events": 10, "linger": "300ms"})
    config = write_deployment(tmp_path, [json.loads(json.dumps(spec).replace("{sink}", base))],
                              {"server": {"port": (port := free_port())}})  # fmt: skip
    gateway = Process(config, port, tmp_path / "gateway.log")
    processes.append(gateway)
    await gateway.start()
    recorder.plan("/crash", "hang", 200)  # the first attempt never gets an answer
    async with aiohttp.ClientSession() as http:
        for i in range(4):
            async with http.post(f"{gateway.url}/events", **structured(order(f"c{i}"))) as resp:
                assert resp.status == 202
    (first,) = await recorder.wait_for("/crash", 1)
    gateway.kill(signal.SIGKILL)
    gateway.wait()
    async with aiohttp.ClientSession() as http:  # arrives after the crash: not in that batch
        await gateway.start()
        async with http.post(f"{gateway.url}/events", **structured(order("late"))) as resp:
            assert resp.status == 202
    await all_events(recorder, "/crash", 5)
    await recorder.wait_for("/crash", 3)  # hung, again after the crash, then "late" apart
    again = [r for r in recorder.at("/crash")[1:]
             if r.headers["webhook-id"] == first.headers["webhook-id"]]  # fmt: skip
    assert [r.body for r in again] == [first.body]
    assert [e.get_id() for e in events_of(first)] == ["c0", "c1", "c2", "c3"]


async def test_two_replicas_on_postgresql_never_split_or_renumber_a_batch(start: Start) -> None:
    async with postgres_schema(pool_max=4) as url:
        spec = sub("b", {"max_events": 5, "linger": "30ms"})
        a = await start([spec], gateway={"store": url})
        b = await start([spec], gateway={"store": url})
        a.subscriber.plan("/b", 503, 503, 503, 200)
        sent = [order(f"x{i:02d}") for i in range(40)]
        for i, event in enumerate(sent):
            assert (await (a if i % 2 else b).post(**structured(event))).status == 202
        await all_events(a.subscriber, "/b", 40)
        bodies: dict[str, set[bytes]] = {}
        for got in a.subscriber.at("/b"):
            bodies.setdefault(got.headers["webhook-id"], set()).add(got.body)
        assert all(len(found) == 1 for found in bodies.values())  # a retry is the same batch
        ids = [e["id"] for found in bodies.values() for body in found for e in json.loads(body)]
        assert sorted(ids) == sorted(e.get_id() for e in sent)  # each event in one batch only
        for gw in (a, b):
            await gw.client.close()


async def test_ordered_batches_hold_a_key_behind_its_failing_batch(start: Start) -> None:
    # CONTRACT 5: with ordering, a key's later event never goes before the batch holding its
    # earlier ones is delivered; other keys are not held.
    spec = sub("o", {"max_events": 2, "linger": "50ms"})
    spec["delivery"]["ordering"] = {"key": "partitionkey"}
    gw = await start([spec])
    gw.subscriber.plan("/o", 503, 503, 200)
    ids = {name: f"{name}-{i}" for i, name in enumerate(("a1", "a2", "a3", "b1"))}
    keys = {"a1": "A", "a2": "A", "a3": "A", "b1": "B"}
    await publish(gw, [order(ids[n], partitionkey=keys[n]) for n in ("a1", "a2", "a3", "b1")])
    await all_events(gw.subscriber, "/o", 4)
    requests = [[item["id"] for item in json.loads(r.body)] for r in gw.subscriber.at("/o")]
    failed, delivered = requests[:2], requests[2:]  # the plan: two 503s, then 200s
    first_a3 = next(i for i, batch in enumerate(requests) if ids["a3"] in batch)
    ok_a1 = 2 + next(i for i, batch in enumerate(delivered) if ids["a1"] in batch)
    assert first_a3 > ok_a1, requests
    assert all(ids["a3"] not in batch for batch in failed), requests
    for batch in requests:  # within a batch, a key's events keep their order
        seen = [i for i in batch if i.startswith("a")]
        assert seen == sorted(seen, key=lambda i: int(i.rsplit("-", 1)[1])), requests
