"""HTTP content modes: detection and parsing (CE HTTP binding 3, JSON format 3-4)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import GatewayError, InvalidEvent, UnsupportedMediaType
from gateway.event import UNPARSED, AttributeValue, DataKind, Event, canonical
from gateway.ingest.modes import ContentMode, detect, parse, parse_structured
from tests.conftest import load_vector

STRUCTURED = "application/cloudevents+json; charset=utf-8"
BATCH = "application/cloudevents-batch+json; charset=utf-8"
CE: dict[str, AttributeValue] = {"id": "1", "source": "/s", "specversion": "1.0", "type": "t"}
CE_HEADERS: dict[str, str] = {f"ce-{k}": str(v) for k, v in CE.items()}


def _parse(headers: Any, body: bytes | str) -> tuple[ContentMode, list[Event]]:
    raw = body.encode() if isinstance(body, str) else body
    return parse(CIMultiDict(headers), raw)


def _one(headers: Any, body: bytes | str) -> Event:
    _, events = _parse(headers, body)
    assert len(events) == 1
    return events[0]


def _structured(obj: object, content_type: str = STRUCTURED) -> Event:
    mode, events = _parse({"Content-Type": content_type}, orjson.dumps(obj))
    assert mode is ContentMode.STRUCTURED
    return events[0]


def _error(headers: Any, body: bytes | str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        _parse(headers, body)
    return caught.value


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        (None, ContentMode.BINARY),
        ("", ContentMode.BINARY),
        ("application/json", ContentMode.BINARY),
        ("text/plain", ContentMode.BINARY),
        ("application/cloudevents+json", ContentMode.STRUCTURED),
        ("application/cloudevents+json; charset=UTF-8", ContentMode.STRUCTURED),
        ("Application/CloudEvents+JSON", ContentMode.STRUCTURED),
        ("application/cloudevents+avro", ContentMode.STRUCTURED),
        ("application/cloudevents", ContentMode.STRUCTURED),
        ("application/cloudevents-batch+json", ContentMode.BATCH),
        ("APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8", ContentMode.BATCH),
        ("application/cloudevents-batch+protobuf", ContentMode.BATCH),
        ("application/cloudevent+json", ContentMode.BINARY),
        ("xapplication/cloudevents+json", ContentMode.BINARY),
    ],
)
def test_detect(content_type: str | None, mode: ContentMode) -> None:
    assert detect(content_type) is mode


# --- structured mode -------------------------------------------------------------------------


_J, _T, _B, _N, _U = DataKind.JSON, DataKind.TEXT, DataKind.BINARY, DataKind.NONE, UNPARSED


@pytest.mark.parametrize(
    ("members", "kind", "data", "value"),
    [
        ({}, _N, None, _U),
        ({"data": {"a": [1, 2.5, None]}}, _J, b'{"a":[1,2.5,null]}', {"a": [1, 2.5, None]}),
        # A JSON string stays a string: never parsed again (JSON format 3.1).
        ({"data": '{"a":1}'}, _J, b'"{\\"a\\":1}"', '{"a":1}'),
        ({"data": None}, _J, b"null", None),
        ({"data": 0}, _J, b"0", 0),
        ({"data": False, "datacontenttype": "application/json"}, _J, b"false", False),
        ({"data": [1], "datacontenttype": "application/vnd.x+json; v=2"}, _J, b"[1]", [1]),
        ({"data": {"b": 1}, "datacontenttype": "TEXT/JSON"}, _J, b'{"b":1}', {"b": 1}),
        ({"data": "<a/>", "datacontenttype": "application/xml"}, _T, b"<a/>", _U),
        ({"data": "héllo €", "datacontenttype": "text/plain"}, _T, "héllo €".encode(), _U),
        ({"data": "", "datacontenttype": "text/csv"}, _T, b"", _U),
        ({"data": "AAE=", "datacontenttype": "application/octet-stream"}, _T, b"AAE=", _U),
        ({"data_base64": "AAH/"}, _B, b"\x00\x01\xff", _U),
        ({"data_base64": ""}, _B, b"", _U),
        ({"data_base64": "eyJ4IjoxfQ==", "datacontenttype": "text/json"}, _B, b'{"x":1}', _U),
        ({"data_base64": None, "data": 1}, _J, b"1", 1),
        ({"data_base64": None}, _N, None, _U),
    ],
)
def test_structured_data(
    members: dict[str, object], kind: DataKind, data: bytes | None, value: object
) -> None:
    event = _structured({**CE, **members})
    assert event.kind is kind
    assert event.data == data
    assert event.value == value or (value is UNPARSED and event.value is UNPARSED)
    assert "data" not in event.attributes
    assert "data_base64" not in event.attributes


def test_structured_keeps_attributes_exactly() -> None:
    obj = {
        **CE,
        "time": "2018-04-05T17:31:00.000000001+02:00",
        "comexampleothervalue": 5,
        "flag": False,
        "subject": None,
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b9c7c989f97918e1-01",
    }
    event = _structured(obj)
    assert event.attributes == {k: v for k, v in obj.items() if v is not None}
    assert event.attributes["flag"] is False


def test_structured_ignores_ce_headers() -> None:
    # CE HTTP binding 3.2: the body is authoritative; headers may repeat the attributes.
    headers = [("Content-Type", STRUCTURED), ("ce-id", "other"), ("ce-id", "dup"), ("ce-x", "%zz")]
    event = _one(headers, orjson.dumps(CE))
    assert event.attributes == CE


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"{}x", "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b'{"id": "\xff"}', "not valid JSON"),
        (b'{"id": "\\ud800"}', "not valid JSON"),
        (b"[]", "must be a JSON object, not an array"),
        (b'"event"', "must be a JSON object, not a string"),
        (b"null", "not null"),
        (orjson.dumps({**CE, "data": 1, "data_base64": "AA=="}), "mutually exclusive"),
        (orjson.dumps({**CE, "data": None, "data_base64": "AA=="}), "mutually exclusive"),
        (orjson.dumps({**CE, "data_base64": "AA="}), "not valid Base64"),
        (orjson.dumps({**CE, "data_base64": "A A=="}), "not valid Base64"),
        (orjson.dumps({**CE, "data_base64": "AA==\n"}), "not valid Base64"),
        (orjson.dumps({**CE, "data_base64": "é"}), "not valid Base64"),
        (orjson.dumps({**CE, "data_base64": 5}), "'data_base64' must be a string"),
        (orjson.dumps({**CE, "datacontenttype": "text/plain", "data": {"a": 1}}), "not an object"),
        (orjson.dumps({**CE, "datacontenttype": "text/plain", "data": None}), "not null"),
        (orjson.dumps({**CE, "id": 5}), "'id' must be a String"),
        (orjson.dumps({**CE, "datacontenttype": 5}), "'datacontenttype' must be a String"),
        (orjson.dumps({**CE, "specversion": "0.3"}), "1.0"),
        (orjson.dumps({**CE, "Bad-Name": "x"}), "'Bad-Name'"),
        (orjson.dumps({**CE, "ext": 1.0}), "'ext'"),
        (orjson.dumps({**CE, "ext": 2**40}), "'ext'"),
        (b'{"id":"1","source":"/s","specversion":"1.0","type":"t","ext":1e400}', "JSON"),
        (orjson.dumps({k: v for k, v in CE.items() if k != "type"}), "type"),
    ],
)
def test_structured_rejects(body: bytes, detail: str) -> None:
    error = _error({"Content-Type": STRUCTURED}, body)
    assert isinstance(error, InvalidEvent)
    assert error.status == 400
    assert detail in error.detail
    assert error.index is None


@pytest.mark.parametrize(
    "content_type",
    [
        "application/cloudevents+avro",
        "application/cloudevents+protobuf",
        "application/cloudevents+xml",
        "application/cloudevents",
        "application/cloudevents+json; charset=utf-16",
        "application/cloudevents+json; charset=latin1",
        'application/cloudevents+json; charset="iso-8859-1"',
        "application/cloudevents-batch+protobuf",
        "application/cloudevents-batch+json; charset=utf-16le",
        "application/cloudevents-batchy",
    ],
)
def test_unsupported_formats_are_415(content_type: str) -> None:
    error = _error({"Content-Type": content_type}, orjson.dumps(CE))
    assert isinstance(error, UnsupportedMediaType)
    assert error.status == 415


@pytest.mark.parametrize(
    "content_type",
    [
        "application/cloudevents+json",
        "Application/CloudEvents+JSON; Charset=UTF-8",
        'application/cloudevents+json;charset="utf-8"',
        "application/cloudevents+json ; foo=bar",
    ],
)
def test_json_format_spellings_are_accepted(content_type: str) -> None:
    assert _structured(CE, content_type).attributes == CE


def test_parse_structured_directly() -> None:
    event = parse_structured({**CE, "data": {"k": "v"}})
    assert event == Event(CE, b'{"k":"v"}', DataKind.JSON)
    with pytest.raises(InvalidEvent):
        parse_structured([CE])


# --- batched mode ----------------------------------------------------------------------------


def test_batch_of_events() -> None:
    items = [
        {**CE, "id": "a", "data": {"n": 1}},
        {**CE, "id": "b", "datacontenttype": "text/plain", "data": "x"},
        {**CE, "id": "c", "data_base64": "AA=="},
        {**CE, "id": "d"},
    ]
    mode, events = _parse({"Content-Type": BATCH}, orjson.dumps(items))
    assert mode is ContentMode.BATCH
    assert [e.id for e in events] == ["a", "b", "c", "d"]
    assert [e.kind for e in events] == [_J, _T, _B, _N]
    assert [e.data for e in events] == [b'{"n":1}', b"x", b"\x00", None]


def test_empty_batch_is_valid() -> None:
    assert _parse({"Content-Type": "application/cloudevents-batch+json"}, b"[]") == (
        ContentMode.BATCH,
        [],
    )


@pytest.mark.parametrize(
    ("items", "index", "detail"),
    [
        ([CE, CE, {**CE, "id": ""}], 2, "'id'"),
        ([5], 0, "must be a JSON object"),
        ([CE, [CE]], 1, "must be a JSON object"),
        ([CE, {**CE, "specversion": "0.3"}], 1, "specversion"),  # one specversion per batch
        ([CE, {**CE, "data": 1, "data_base64": "AA=="}], 1, "mutually exclusive"),
        ([{**CE, "data_base64": "!"}], 0, "Base64"),
    ],
)
def test_batch_errors_carry_the_index(items: list[object], index: int, detail: str) -> None:
    error = _error({"Content-Type": BATCH}, orjson.dumps(items))
    assert isinstance(error, InvalidEvent)
    assert error.index == index
    assert error.problem()["index"] == index
    assert detail in error.detail


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"", "empty"), (b"[", "not valid JSON"), (orjson.dumps(CE), "must be a JSON array")],
)
def test_batch_body_must_be_an_array(body: bytes, detail: str) -> None:
    error = _error({"Content-Type": BATCH}, body)
    assert isinstance(error, InvalidEvent)
    assert error.index is None
    assert detail in error.detail


# --- binary mode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "kind", "value"),
    [
        (None, b"", DataKind.NONE, UNPARSED),
        ("application/json", b"", DataKind.NONE, UNPARSED),
        (None, b'{"a":1}', DataKind.BINARY, UNPARSED),  # no Content-Type: never assume JSON
        (None, b"\x00\xff", DataKind.BINARY, UNPARSED),
        ("application/json", b'{ "a" : 1 }\n', DataKind.JSON, {"a": 1}),
        ("application/json; charset=utf-8", b'"s"', DataKind.JSON, "s"),
        ("Application/JSON", b"null", DataKind.JSON, None),
        ("text/json", b"2", DataKind.JSON, 2),
        ("application/vnd.api+json", b"[]", DataKind.JSON, []),
        ("text/plain", b"hello", DataKind.TEXT, UNPARSED),
        ("text/plain; charset=UTF-8", "é".encode(), DataKind.TEXT, UNPARSED),
        ("text/plain; charset=iso-8859-1", b"caf\xe9", DataKind.BINARY, UNPARSED),
        ("text/plain; charset=iso-8859-1", b"ascii", DataKind.BINARY, UNPARSED),
        ("text/plain", b"caf\xe9", DataKind.BINARY, UNPARSED),  # not UTF-8
        ("application/xml", b"<a/>", DataKind.TEXT, UNPARSED),
        ("image/svg+xml", b"<svg/>", DataKind.TEXT, UNPARSED),
        ("application/octet-stream", b"bytes", DataKind.BINARY, UNPARSED),
        ("image/png", b"\x89PNG", DataKind.BINARY, UNPARSED),
    ],
)
def test_binary_data(content_type: str | None, body: bytes, kind: DataKind, value: object) -> None:
    headers = dict(CE_HEADERS)
    if content_type is not None:
        headers["Content-Type"] = content_type
    mode, [event] = _parse(headers, body)
    assert mode is ContentMode.BINARY
    assert event.kind is kind
    # The body is kept byte for byte, even when it is JSON.
    assert event.data == (body if kind is not DataKind.NONE else None)
    assert event.value == value or (value is UNPARSED and event.value is UNPARSED)
    assert event.datacontenttype == content_type  # verbatim, even without data


def test_binary_attributes_from_headers() -> None:
    headers = [
        ("Ce-Id", "A%20B"),
        ("CE-SOURCE", "/mycontext"),
        ("ce-specversion", "1.0"),
        ("ce-type", "com.example.someevent"),
        ("ce-time", "2018-04-05T17:31:00Z"),
        ("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
        ("ce-comexampleothervalue", "5"),
        ("ce-quoted", '"a \\"b\\""'),
        ("ce-Mixed", "x"),
        ("ce-raw", "Euro €"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b9c7c989f97918e1-01"),
        ("Content-Type", "TEXT/Plain; CharSet=utf-8"),
        ("X-Other", "ignored"),
    ]
    event = _one(headers, b"hi")
    assert event.attributes == {
        "id": "A B",
        "source": "/mycontext",
        "specversion": "1.0",
        "type": "com.example.someevent",
        "time": "2018-04-05T17:31:00Z",
        "subject": "Euro € 😀",
        "comexampleothervalue": "5",  # binary mode: every value arrives as a String
        "quoted": 'a "b"',
        "mixed": "x",
        "raw": "Euro €",
        "datacontenttype": "TEXT/Plain; CharSet=utf-8",
    }


def test_binary_accepts_a_header_proxy() -> None:
    mode, [event] = parse(CIMultiDictProxy(CIMultiDict(CE_HEADERS)), b"")
    assert mode is ContentMode.BINARY
    assert event == Event(CE)


@pytest.mark.parametrize(
    ("headers", "body", "detail"),
    [
        ({}, b"{}", "not a CloudEvent"),
        ({"Content-Type": "application/json"}, b"{}", "no ce- headers"),
        ({"ce-id": "1", "ce-source": "/s"}, b"", "ce-specversion, ce-type"),
        ({**CE_HEADERS, "ce-datacontenttype": "text/plain"}, b"", "ce-datacontenttype"),
        ([*CE_HEADERS.items(), ("ce-id", "2")], b"", "ce-id appears more than once"),
        ([*CE_HEADERS.items(), ("CE-ext", "a"), ("ce-EXT", "a")], b"", "ce-ext"),
        ({**CE_HEADERS, "ce-subject": "%C0%A0"}, b"", "ce-subject"),  # overlong UTF-8
        ({**CE_HEADERS, "ce-subject": "%zz"}, b"", "ce-subject"),
        ({**CE_HEADERS, "ce-subject": "caf\udce9"}, b"", "not valid UTF-8"),  # raw latin-1 byte
        ({**CE_HEADERS, "ce-subject": "%00"}, b"", "U+0000"),
        ({**CE_HEADERS, "ce-specversion": "0.3"}, b"", "1.0"),
        ({**CE_HEADERS, "ce-bad_name": "x"}, b"", "'bad_name'"),
        ({**CE_HEADERS, "ce-": "x"}, b"", "''"),
        ({**CE_HEADERS, "ce-data": "x"}, b"", "reserved"),
        ({**CE_HEADERS, "ce-time": "yesterday"}, b"", "'time'"),
        ({**CE_HEADERS, "Content-Type": "not a media type"}, b"x", "'datacontenttype'"),
        ({**CE_HEADERS, "Content-Type": "application/json"}, b"{oops", "application/json"),
        ({**CE_HEADERS, "Content-Type": "application/json"}, b"\xff", "not valid JSON"),
        ([*CE_HEADERS.items(), ("Content-Type", "a/b"), ("Content-Type", "c/d")], b"", "Content"),
    ],
)
def test_binary_rejects(headers: Any, body: bytes, detail: str) -> None:
    error = _error(headers, body)
    assert isinstance(error, InvalidEvent)
    assert detail in error.detail


# --- independent oracles: the spec's examples and the Python SDK -----------------------------


def _example_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = load_vector("cloudevents-spec/json_format_examples.json")["cases"]
    return cases


def test_spec_examples_structured_and_binary_agree() -> None:
    for case in _example_cases():
        structured = _structured(case["structured"])
        wire = case["binary"]
        body = wire["body"].encode() if "body" in wire else orjson.dumps(wire["body_json"])
        binary = _one(wire["headers"], body)
        # Every structured attribute arrives as its canonical string in binary mode.
        expected = {k: canonical(v) for k, v in structured.attributes.items()}
        if structured.kind is DataKind.JSON and "datacontenttype" not in expected:
            expected["datacontenttype"] = "application/json"  # the implied type made explicit
        assert binary.attributes == expected, case["name"]
        assert binary.kind is structured.kind, case["name"]
        if structured.kind is DataKind.JSON:
            assert binary.value == structured.value, case["name"]
            assert orjson.loads(binary.data or b"") == orjson.loads(structured.data or b"")
        else:
            assert binary.data == structured.data, case["name"]
        assert "unsetextension" not in structured.attributes


def _sdk_events() -> list[Any]:
    from cloudevents.core.v1.event import CloudEvent

    common = {"type": "com.example.t", "source": "https://example.com/a%20b", "id": "x-1"}
    return [
        CloudEvent({**common, "subject": "Euro € 😀", "myext": 'a b "q" 100%'}, {"k": [1, 2]}),
        CloudEvent({**common, "datacontenttype": "text/plain; charset=utf-8"}, "héllo"),
        CloudEvent({**common, "datacontenttype": "application/octet-stream"}, b"\x00\x01\xfe"),
        CloudEvent({**common, "count": 7, "dataschema": "https://example.com/s.json"}, None),
    ]


@pytest.mark.parametrize("index", range(4))
def test_sdk_messages_parse_to_the_sdk_event(index: int) -> None:
    from cloudevents.core.bindings.http import to_binary_event, to_structured_event

    sdk = _sdk_events()[index]
    expected = {k: v for k, v in sdk.get_attributes().items() if k != "time"}
    sdk_data = sdk.get_data()
    for mode, message in (
        (ContentMode.BINARY, to_binary_event(sdk)),
        (ContentMode.STRUCTURED, to_structured_event(sdk)),
    ):
        got_mode, [event] = _parse(message.headers, message.body)
        assert got_mode is mode
        attributes = dict(event.attributes)
        assert attributes.pop("time")  # the SDK always adds one; we keep it as sent
        if mode is ContentMode.BINARY:  # binary mode carries every value as its string
            assert attributes == {k: canonical(v) for k, v in expected.items()}
        else:
            assert attributes == expected
        if isinstance(sdk_data, bytes):
            assert event.data == sdk_data
            assert event.kind is DataKind.BINARY
        elif isinstance(sdk_data, str):
            assert event.data == sdk_data.encode()
            assert event.kind is DataKind.TEXT
        elif sdk_data is None:
            assert event.kind is DataKind.NONE
        elif "datacontenttype" not in expected and mode is ContentMode.BINARY:
            # The SDK writes no Content-Type for JSON data; without one we never assume JSON.
            assert event.kind is DataKind.BINARY
            assert orjson.loads(event.data or b"") == sdk_data
        else:
            assert event.kind is DataKind.JSON
            assert event.value == sdk_data
            assert orjson.loads(event.data or b"") == sdk_data


# --- robustness: only GatewayError ever comes out --------------------------------------------

_HEADER_NAMES = st.sampled_from(
    ["Content-Type", "ce-id", "ce-source", "ce-specversion", "ce-type", "ce-time", "ce-x",
     "ce-datacontenttype", "ce-", "CE-Data", "ce-dataschema", "ce-subject", "x-other"]
)  # fmt: skip
_CONTENT_TYPES = st.sampled_from(
    [STRUCTURED, BATCH, "application/json", "text/plain; charset=latin1", "application/xml",
     "application/cloudevents+avro", "application/cloudevents-batch", "", "x"]
)  # fmt: skip
_HEADER_VALUES = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(["1.0", "/s", "t", "%C0%A0", '"q"', "2018-04-05T17:31:00Z", "%"]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # what orjson can write
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
_EVENTISH = st.fixed_dictionaries(
    {}, optional={**{k: st.sampled_from([v, "", 5, None]) for k, v in CE.items()},
                  "data": _JSON, "data_base64": st.sampled_from(["AA==", "A", 3]),
                  "datacontenttype": st.sampled_from(["text/plain", "application/json", 1]),
                  "time": st.sampled_from(["2018-04-05T17:31:00Z", "2018-02-30T00:00:00Z"]),
                  "ext": _JSON}
)  # fmt: skip
_BODIES = st.one_of(
    st.binary(max_size=64),
    _JSON.map(orjson.dumps),
    _EVENTISH.map(orjson.dumps),
    st.lists(_EVENTISH, max_size=3).map(orjson.dumps),
)


_HEADERS = st.lists(
    st.tuples(_HEADER_NAMES, _HEADER_VALUES) | st.tuples(st.just("Content-Type"), _CONTENT_TYPES),
    max_size=8,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(headers=_HEADERS, body=_BODIES)
def test_parse_raises_only_gateway_errors(headers: list[tuple[str, str]], body: bytes) -> None:
    try:
        mode, events = parse(CIMultiDict(headers), body)
    except GatewayError as error:
        status = error.status
        assert status in (400, 415)
        return
    for event in events:
        assert all(name in event.attributes for name in CE)
        assert event.kind is DataKind.NONE or isinstance(event.data, bytes)
    assert mode is ContentMode.BATCH or len(events) == 1
