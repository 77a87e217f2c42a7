"""Rendering stored events as requests, checked against the spec's examples and the CE SDK."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from gateway.config.model import Delivery, Mode, Subscription
from gateway.delivery.render import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    Request,
    binary,
    dead_letter,
    dead_letter_info,
    render,
    structured,
)
from gateway.event import AttributeValue, DataKind, Event, is_json_media_type
from gateway.store.base import Attempt, DeadLetterInfo, Kind, Leased
from tests.conftest import load_vector

BASE: dict[str, AttributeValue] = {
    "specversion": "1.0",
    "id": "A-1",
    "source": "/shop",
    "type": "com.example.order.created",
}


def event(data: bytes | None = None, kind: DataKind = DataKind.NONE, **attrs: Any) -> Event:
    return Event({**BASE, **attrs}, data, kind)


def from_structured(obj: dict[str, Any]) -> Event:
    """What ingest stores for a JSON-format event (nulls are unset: JSON format 2.4)."""
    attributes = {
        k: v for k, v in obj.items() if v is not None and k not in ("data", "data_base64")
    }
    if obj.get("data_base64") is not None:
        return Event(attributes, base64.b64decode(obj["data_base64"]), DataKind.BINARY)
    if "data" not in obj:
        return Event(attributes)
    dct = attributes.get("datacontenttype")
    if is_json_media_type(None if dct is None else str(dct)):
        return Event(attributes, orjson.dumps(obj["data"]), DataKind.JSON)
    return Event(attributes, obj["data"].encode(), DataKind.TEXT)


def sdk_parse(request: Request) -> tuple[dict[str, Any], Any]:
    """Attributes and data as the CloudEvents SDK reads our request."""
    parsed = from_http_event(HTTPMessage(dict(request.headers), request.body))
    return dict(parsed.get_attributes()), parsed.get_data()


def comparable(sdk_attrs: dict[str, Any], sent: Event) -> dict[str, Any]:
    """The SDK's attributes minus its quirks: a `time` it invents, datetimes for strings."""
    attrs = dict(sdk_attrs)
    if "time" not in sent.attributes:
        attrs.pop("time", None)
    elif isinstance(attrs.get("time"), datetime):
        expected = datetime.fromisoformat(str(sent.attributes["time"]).replace("Z", "+00:00"))
        assert attrs["time"] == expected
        attrs["time"] = sent.attributes["time"]
    return attrs


def headers_of(request: Request) -> dict[str, str]:
    names = [name.lower() for name, _ in request.headers]
    assert len(names) == len(set(names)), "a header appears twice"
    return {name.lower(): value for name, value in request.headers}


# -- the spec's own examples (JSON format 3.2 and main) ---------------------------------------


def spec_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = load_vector("cloudevents-spec/json_format_examples.json")["cases"]
    assert cases
    return cases


def test_binary_matches_the_spec_examples() -> None:
    for case in spec_cases():
        request = binary(from_structured(case["structured"]))
        want = case["binary"]
        assert headers_of(request) == want["headers"], case["name"]
        if "body_json" in want:
            assert orjson.loads(request.body) == want["body_json"], case["name"]
        else:
            assert request.body == want["body"].encode(), case["name"]


def test_structured_matches_the_spec_examples() -> None:
    for case in spec_cases():
        request = structured(from_structured(case["structured"]))
        without_nulls = {k: v for k, v in case["structured"].items() if v is not None}
        assert orjson.loads(request.body) == without_nulls, case["name"]


# -- binary mode ------------------------------------------------------------------------------


def test_binary_round_trips_through_the_sdk() -> None:
    sent = event(
        b'{"total": 12.5}',
        DataKind.JSON,
        time="2018-04-05T17:31:00Z",
        subject="order-7",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b9c7c989f97918e1-01",
        sequence=42,
        flagged=True,
    )
    request = binary(sent)
    attrs, data = sdk_parse(request)
    # The SDK returns every binary-mode extension as a string, and makes datacontenttype explicit.
    expected = {
        k: v if k in BASE or k in ("time", "subject") else str(v).lower()
        for k, v in sent.attributes.items()
    }
    assert comparable(attrs, sent) == {**expected, "datacontenttype": "application/json"}
    assert data == {"total": 12.5}
    assert request.body == b'{"total": 12.5}'


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
        ('say "hi"', "say%20%22hi%22"),
        ("100%", "100%25"),
        ("tab\there", "tab%09here"),
        ("/mycontext/sub", "/mycontext/sub"),
    ],
)
def test_binary_percent_encodes_header_values(value: str, header: str) -> None:
    sent = event(subject=value)
    request = binary(sent)
    assert headers_of(request)["ce-subject"] == header
    attrs, _ = sdk_parse(request)
    assert attrs["subject"] == value


def test_binary_header_values_are_ascii_only() -> None:
    request = binary(event(source="/ünïcode", comment="日本"))
    for name, value in request.headers:
        assert value.isascii(), name


@pytest.mark.parametrize(
    "payload",
    [b"\x00\xff\xfe binary \x80", bytes(range(256)), b"", b"not json {"],
)
def test_binary_body_is_byte_exact(payload: bytes) -> None:
    request = binary(event(payload, DataKind.BINARY, datacontenttype="application/octet-stream"))
    assert request.body == payload
    assert headers_of(request)["content-type"] == "application/octet-stream"


def test_binary_json_data_is_sent_as_stored() -> None:
    stored = b'{ "b" : 1.10,\n  "a": [1e3] }'
    request = binary(event(stored, DataKind.JSON, datacontenttype="application/json"))
    assert request.body == stored


def test_binary_implies_application_json_only_for_json_data() -> None:
    assert headers_of(binary(event(b"1", DataKind.JSON)))["content-type"] == "application/json"
    # JSON format 3.1 (main): data_base64 without a datacontenttype MUST NOT be taken as JSON.
    assert "content-type" not in headers_of(binary(event(b"\x01", DataKind.BINARY)))


def test_binary_never_sends_ce_datacontenttype() -> None:
    request = binary(event(b"<a/>", DataKind.TEXT, datacontenttype="application/xml"))
    headers = headers_of(request)
    assert "ce-datacontenttype" not in headers
    assert headers["content-type"] == "application/xml"
    assert request.body == b"<a/>"


def test_binary_without_data_has_an_empty_body_and_no_content_type() -> None:
    request = binary(event())
    assert request.body == b""
    assert "content-type" not in headers_of(request)
    attrs, data = sdk_parse(request)
    assert data is None
    assert comparable(attrs, event()) == BASE


def test_binary_datacontenttype_without_data_is_kept() -> None:
    request = binary(event(datacontenttype="application/json"))
    assert request.body == b""
    assert headers_of(request)["content-type"] == "application/json"


def test_binary_null_data_differs_from_absent_data() -> None:
    null = binary(event(b"null", DataKind.JSON))
    assert null.body == b"null"
    assert headers_of(null)["content-type"] == "application/json"
    absent = binary(event())
    assert absent.body == b""


# -- structured mode --------------------------------------------------------------------------


def test_structured_content_type_has_the_exact_spelling() -> None:
    request = structured(event())
    assert request.headers == (("Content-Type", "application/cloudevents+json; charset=utf-8"),)
    assert STRUCTURED_CONTENT_TYPE == "application/cloudevents+json; charset=utf-8"


def test_structured_keeps_attribute_types_and_adds_nothing() -> None:
    sent = event(
        b'{"a": 1}', DataKind.JSON, sequence=7, flagged=False, time="2024-01-01T00:00:00+01:00"
    )
    obj = orjson.loads(structured(sent).body)
    assert obj == {**sent.attributes, "data": {"a": 1}}
    assert "datacontenttype" not in obj
    assert obj["time"] == "2024-01-01T00:00:00+01:00"  # not reformatted


def test_structured_embeds_json_data_without_reparsing() -> None:
    stored = b'{"price": 1.10, "big": 12345678901234567890123}'
    body = structured(event(stored, DataKind.JSON)).body
    assert b'"data":' + stored in body


@pytest.mark.parametrize(
    ("kind", "stored", "member", "value"),
    [
        (DataKind.JSON, b'"a string"', "data", "a string"),
        (DataKind.JSON, b"null", "data", None),
        (DataKind.TEXT, "héllo <x/>".encode(), "data", "héllo <x/>"),
        (DataKind.BINARY, b"\x00\xff", "data_base64", "AP8="),
    ],
)
def test_structured_data_members(kind: DataKind, stored: bytes, member: str, value: Any) -> None:
    obj = orjson.loads(structured(event(stored, kind)).body)
    assert obj[member] == value
    assert ({"data", "data_base64"} - {member}).isdisjoint(obj)


def test_structured_without_data_has_no_data_member() -> None:
    obj = orjson.loads(structured(event()).body)
    assert obj == BASE


@pytest.mark.parametrize(
    ("sent", "data"),
    [
        (event(b'{"k": [1, 2]}', DataKind.JSON, datacontenttype="application/json"), {"k": [1, 2]}),
        (event(b"\x00\x01\x02", DataKind.BINARY, datacontenttype="image/png"), b"\x00\x01\x02"),
        (event(b"plain words", DataKind.TEXT, datacontenttype="text/plain"), "plain words"),
        (event(), None),
    ],
)
def test_structured_round_trips_through_the_sdk(sent: Event, data: Any) -> None:
    extra: dict[str, AttributeValue] = {"rank": 3, "vip": True, "time": "2020-01-01T00:00:00Z"}
    sent = replace(sent, attributes={**sent.attributes, **extra})
    attrs, got = sdk_parse(structured(sent))
    assert comparable(attrs, sent) == sent.attributes
    assert got == data


# -- dead letters and the choice of mode ------------------------------------------------------


def test_dead_letter_adds_typed_extensions() -> None:
    sent = event(b'{"a": 1}', DataKind.JSON)
    info = DeadLetterInfo("exhausted", 503, 8, "https://billing.internal/hooks")
    request = dead_letter(sent, info)
    assert headers_of(request)["content-type"] == STRUCTURED_CONTENT_TYPE
    obj = orjson.loads(request.body)
    assert obj == {
        **BASE,
        "deadletterreason": "exhausted",
        "deadletterstatus": 503,
        "deadletterattempts": 8,
        "deadlettersink": "https://billing.internal/hooks",
        "data": {"a": 1},
    }
    attrs, _ = sdk_parse(request)
    assert attrs["deadletterstatus"] == 503


def test_dead_letter_omits_status_when_there_was_no_response() -> None:
    info = DeadLetterInfo("exhausted", None, 3, "https://x.example/")
    obj = orjson.loads(dead_letter(event(), info).body)
    assert "deadletterstatus" not in obj
    assert obj["deadletterattempts"] == 3


SUB = Subscription(name="billing", sink="https://billing.example/hook")


def leased(
    kind: Kind = Kind.SINK, info: DeadLetterInfo | None = None, attempt: int = 1
) -> Leased:
    sent = event(b'{"a": 1}', DataKind.JSON)
    return Leased(1, "billing", kind, attempt, 1, sent, 0.0, info)


SECRET_SINK = replace(SUB, sink="https://user:pw@billing.example/hook?token=t")
QUEUED = DeadLetterInfo("gone", 410, 2, "https://billing.example/hook")


@pytest.mark.parametrize(
    ("row", "reason", "attempt", "expected"),
    [
        # The attempt was made: its status, and it counts.
        (leased(attempt=8), "exhausted", Attempt(503, 1.0), ("exhausted", 503, 8)),
        (leased(attempt=3), "rejected", Attempt(None, 1.0, "timeout"), ("rejected", None, 3)),
        # Not made (the event expired before it): not counted, no status.
        (leased(attempt=4), "expired", None, ("expired", None, 3)),
        # A dead-letter row says what it was queued with, whatever befalls its own delivery.
        (leased(Kind.DEAD_LETTER, QUEUED, 5), "rejected", Attempt(400, 1.0), ("gone", 410, 2)),
    ],
)
def test_dead_letter_info_decides_what_a_dead_letter_says(
    row: Leased, reason: str, attempt: Attempt | None, expected: tuple[Any, ...]
) -> None:
    info = dead_letter_info(SECRET_SINK, row, reason, attempt)
    assert (info.reason, info.status, info.attempts) == expected
    assert "pw" not in info.sink
    assert "token=t" not in info.sink


@pytest.mark.parametrize(
    ("mode", "content_type"),
    [
        (Mode.BINARY, "application/json"),
        (Mode.STRUCTURED, STRUCTURED_CONTENT_TYPE),
        (Mode.BATCH, BATCH_CONTENT_TYPE),
    ],
)
def test_render_picks_the_subscription_mode(mode: Mode, content_type: str) -> None:
    sub = replace(SUB, delivery=Delivery(mode=mode))
    request = render(sub, leased())
    assert headers_of(request)["content-type"] == content_type


def test_render_batch_is_an_array_of_structured_events() -> None:
    sub = replace(SUB, delivery=Delivery(mode=Mode.BATCH))
    assert orjson.loads(render(sub, leased()).body) == [{**BASE, "data": {"a": 1}}]


@pytest.mark.parametrize("mode", list(Mode))
def test_render_dead_letter_rows_are_structured_whatever_the_mode(mode: Mode) -> None:
    sub = replace(SUB, delivery=Delivery(mode=mode))
    info = DeadLetterInfo("gone", 410, 1, SUB.sink)
    request = render(sub, leased(Kind.DEAD_LETTER, info))
    assert headers_of(request)["content-type"] == STRUCTURED_CONTENT_TYPE
    assert orjson.loads(request.body)["deadletterreason"] == "gone"
