"""Source templates: syntax, resolution against a request, body decoding and the attributes
they build (CONTRACT 1, template references; CONTRACT 3, 422 for an unresolved reference)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config.model import Source
from gateway.errors import InvalidEvent
from gateway.event import DataKind
from gateway.ingest.sources import bodies
from gateway.ingest.sources.mapping import TemplateUnresolved, normalize
from gateway.sources.templates import (
    NOTHING,
    SIGNATURE_ROOTS,
    Inputs,
    Reference,
    Template,
    TemplateError,
    Unusable,
    compile_template,
    first_values,
    literal,
    resolve,
)

# -- syntax ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("com.shop.{body.event}", ("com.shop.", Reference("body", ("event",)))),
        ("{body.items.0.sku}", (Reference("body", ("items", "0", "sku")),)),
        ("{headers.X-GitHub-Event}", (Reference("headers", ("x-github-event",)),)),
        ("{query.tenant.id}", (Reference("query", ("tenant.id",)),)),
        ("{ body.a }", (Reference("body", ("a",)),)),
        ("a{{b}}c", ("a{b}c",)),
        ("{{{body.x}}}", ("{", Reference("body", ("x",)), "}")),
        ("{body.a}-{body.b}", (Reference("body", ("a",)), "-", Reference("body", ("b",)))),
        ("plain", ("plain",)),
        ("", ()),
    ],
)
def test_templates_compile_into_literals_and_references(text: str, parts: tuple[Any, ...]) -> None:
    assert compile_template(text).parts == parts


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("com.{body.event", 4, "'{' without a matching '}'"),
        ("com.}x", 4, "'}' without a matching '{'"),
        ("{body.{x}}", 0, "'{' without a matching '}'"),
        ("{payload.x}", 0, "unknown reference {payload.x}"),
        ("{}", 0, "unknown reference {}"),
        ("a{body}", 1, "write {body.<dotted.path>}"),
        ("{body..x}", 0, "write {body.<dotted.path>}"),
        ("{body.x.}", 0, "write {body.<dotted.path>}"),
        ("{headers}", 0, "write {headers.<header name>}"),
        ("{headers.a b}", 0, "write {headers.<header name>}"),
        ("{query}", 0, "write {query.<parameter name>}"),
    ],
)
def test_template_syntax_errors_name_the_fault_and_offset(
    text: str, offset: int, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(text)
    assert caught.value.offset == offset
    assert message in caught.value.message


def test_signature_templates_take_the_raw_body_and_timestamp() -> None:
    signed = compile_template("v0:{timestamp}:{body}", SIGNATURE_ROOTS)
    assert signed.parts == ("v0:", Reference("timestamp"), ":", Reference("body"))
    with pytest.raises(TemplateError):
        compile_template("{body.x}", SIGNATURE_ROOTS)
    with pytest.raises(TemplateError):
        compile_template("{query.x}", SIGNATURE_ROOTS)
    with pytest.raises(TemplateError):
        compile_template("{timestamp}")  # not an attribute reference


def test_literal_templates_keep_braces_and_pointers_escape() -> None:
    assert literal("/sources/{x}").parts == ("/sources/{x}",)
    assert Reference("body", ("a/b", "c~d")).pointer == "/body/a~1b/c~0d"
    assert str(Reference("headers", ("x-id",))) == "{headers.x-id}"


# -- resolution ------------------------------------------------------------------------------

BODY = {
    "event": "created",
    "order": {"id": "o-1", "total": 12.5, "paid": True, "count": 3, "lines": []},
    "items": [{"sku": "A"}, {"sku": "B"}],
    "name": "Zoë 😀",
    "none": None,
    "empty": "",
    "0": "zero-key",
}
INPUTS = Inputs({"x-id": "d-1", "x-empty": ""}, {"tenant": "eu"}, BODY)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("com.shop.{body.event}", "com.shop.created"),
        ("{body.order.id}", "o-1"),
        ("{body.items.1.sku}", "B"),
        ("{body.0}", "zero-key"),  # a digit segment on an object is a key
        ("{headers.x-id}/{query.tenant}", "d-1/eu"),
        ("{body.order.count}", 3),  # one reference keeps the JSON type
        ("{body.order.paid}", True),
        ("{body.order.total}", 12.5),
        ("n={body.order.count},{body.order.paid},{body.order.total}", "n=3,true,12.5"),
        ("{body.name}", "Zoë 😀"),
        ("/{body.name}", "/Zoë 😀"),
        ("fixed", "fixed"),
    ],
)
def test_references_resolve_against_the_request(text: str, value: Any) -> None:
    assert resolve(compile_template(text), INPUTS) == value


@pytest.mark.parametrize(
    ("text", "reference", "reason"),
    [
        ("{body.missing}", "{body.missing}", "resolves to nothing"),
        ("{body.order.id.deeper}", "{body.order.id.deeper}", "resolves to nothing"),
        ("{body.items.2.sku}", "{body.items.2.sku}", "resolves to nothing"),
        ("{body.items.-1.sku}", "{body.items.-1.sku}", "resolves to nothing"),
        ("{body.items.x}", "{body.items.x}", "resolves to nothing"),
        ("{body.none}", "{body.none}", "resolves to nothing"),  # JSON null
        ("{body.empty}", "{body.empty}", "resolves to nothing"),
        ("{headers.x-empty}", "{headers.x-empty}", "resolves to nothing"),
        ("{headers.x-other}", "{headers.x-other}", "resolves to nothing"),
        ("a-{query.nope}", "{query.nope}", "resolves to nothing"),
        ("{body.order}", "{body.order}", "is an object"),
        ("x{body.order.lines}", "{body.order.lines}", "is an array"),
    ],
)
def test_unusable_references_are_named(text: str, reference: str, reason: str) -> None:
    with pytest.raises(Unusable) as caught:
        resolve(compile_template(text), INPUTS)
    assert str(caught.value.reference) == reference
    assert reason in caught.value.reason


def test_a_body_that_is_not_structured_resolves_nothing() -> None:
    with pytest.raises(Unusable):
        resolve(compile_template("{body.x}"), Inputs({}, {}, NOTHING))


def test_first_values_keeps_the_first_and_lower_cases_headers() -> None:
    items = [("X-Id", "1"), ("x-id", "2"), ("Other", "3")]
    assert first_values(items, lower=True) == {"x-id": "1", "other": "3"}
    assert first_values(items, lower=False) == {"X-Id": "1", "x-id": "2", "Other": "3"}


# -- bodies ----------------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("content_type", "body", "kind", "datacontenttype", "view"),
    [
        ("application/json", b'{"a": [1]}', DataKind.JSON, "application/json", {"a": [1]}),
        ("application/vnd.x+json; charset=utf-8", b"7", DataKind.JSON,
         "application/vnd.x+json; charset=utf-8", 7),
        (FORM, b"a=1&b=%C3%A9&a=2&c=", DataKind.BINARY, FORM, {"a": ["1", "2"], "b": "é", "c": ""}),
        ("text/plain; charset=utf-8", "héllo".encode(), DataKind.TEXT,
         "text/plain; charset=utf-8", NOTHING),
        ("application/xml", b"<a>1</a>", DataKind.TEXT, "application/xml", NOTHING),
        ("text/plain; charset=latin-1", b"h\xe9", DataKind.BINARY,
         "text/plain; charset=latin-1", NOTHING),
        ("text/plain", b"\xff\xfe", DataKind.BINARY, "text/plain", NOTHING),
        ("application/octet-stream", bytes(range(256)), DataKind.BINARY,
         "application/octet-stream", NOTHING),
        (None, b"\x00\x01", DataKind.BINARY, None, NOTHING),
        ("application/json", b"", DataKind.NONE, None, NOTHING),
    ],
)  # fmt: skip
def test_bodies_become_data_and_a_view(
    content_type: str | None, body: bytes, kind: DataKind, datacontenttype: str | None, view: Any
) -> None:
    decoded = bodies.decode(content_type, body)
    assert decoded.kind is kind
    assert decoded.content_type == datacontenttype
    assert decoded.view == view
    assert decoded.data == (body if kind is not DataKind.NONE else None)


def test_a_form_payload_field_becomes_json_data() -> None:
    payload = {"action": "opened", "number": 1}
    form = b"payload=" + orjson.dumps(payload).replace(b'"', b"%22").replace(b" ", b"+")
    decoded = bodies.decode("application/x-www-form-urlencoded", form, "payload")
    assert (decoded.kind, decoded.content_type) == (DataKind.JSON, "application/json")
    assert decoded.view == payload
    assert decoded.value == payload
    assert orjson.loads(decoded.data or b"") == payload
    # A form without the field is an ordinary form.
    plain = bodies.decode("application/x-www-form-urlencoded", b"a=1", "payload")
    assert (plain.kind, plain.data, plain.view) == (DataKind.BINARY, b"a=1", {"a": "1"})


@pytest.mark.parametrize(
    ("content_type", "body", "payload_field"),
    [
        ("application/json", b"{not json", None),
        ("application/x-www-form-urlencoded", b"payload=%7Bnot", "payload"),
        ("application/x-www-form-urlencoded", b"a=%FF", None),
    ],
)
def test_malformed_structured_bodies_are_invalid(
    content_type: str, body: bytes, payload_field: str | None
) -> None:
    with pytest.raises(InvalidEvent):
        bodies.decode(content_type, body, payload_field)


def test_more_than_one_content_type_is_invalid() -> None:
    assert bodies.request_content_type([("content-type", "a/b"), ("x", "y")]) == "a/b"
    assert bodies.request_content_type([]) is None
    with pytest.raises(InvalidEvent):
        bodies.request_content_type([("Content-Type", "a/b"), ("content-type", "c/d")])


# -- attributes ------------------------------------------------------------------------------


def _source(**event: str | list[str]) -> Source:
    compiled = {
        name: tuple(compile_template(t) for t in (v if isinstance(v, list) else [v]))
        for name, v in event.items()
    }
    return Source("shop", "/sources/shop", event=tuple(compiled.items()))


def _event(source: Source, body: Any, headers: dict[str, str] | None = None) -> Any:
    decoded = bodies.decode("application/json", orjson.dumps(body))
    inputs = Inputs(headers or {}, {}, decoded.view)
    return normalize(source, inputs, decoded, lambda: "minted")


SHOP = dict(type="com.shop.{body.event}", source="/shop")


@pytest.mark.parametrize(
    ("extra", "body", "expected"),
    [
        ({}, {"event": "x"}, {"id": "minted"}),
        ({"id": "{body.n}"}, {"event": "x", "n": 42}, {"id": "42"}),
        ({"subject": "{body.missing}"}, {"event": "x"}, {}),  # optional: left out
        ({"subject": ["{body.pr}", "{body.issue}"]}, {"event": "x", "issue": 9}, {"subject": "9"}),
        ({"time": "{body.t}"}, {"event": "x", "t": 0}, {"time": "1970-01-01T00:00:00Z"}),
        ({"time": "{body.t}"}, {"event": "x", "t": 1.5}, {"time": "1970-01-01T00:00:01.500000Z"}),
        ({"time": "{body.t}"}, {"event": "x", "t": "2024-02-29T10:00:00+01:00"},
         {"time": "2024-02-29T10:00:00+01:00"}),
        ({"count": "{body.n}"}, {"event": "x", "n": 7}, {"count": 7}),  # Integer extension
        ({"paid": "{body.b}"}, {"event": "x", "b": False}, {"paid": False}),
        ({"big": "{body.n}"}, {"event": "x", "n": 2**31}, {"big": "2147483648"}),
        ({"ratio": "{body.f}"}, {"event": "x", "f": 0.5}, {"ratio": "0.5"}),
        ({"label": "n{body.n}"}, {"event": "x", "n": 7}, {"label": "n7"}),
        ({"who": "{body.name}"}, {"event": "x", "name": "Zoë"}, {"who": "Zoë"}),
        ({"nested": "{body.a.b.0.c}"}, {"event": "x", "a": {"b": [{"c": "deep"}]}},
         {"nested": "deep"}),
        ({"tag": "{body.obj}"}, {"event": "x", "obj": {}}, {}),  # optional: no usable value
    ],
)  # fmt: skip
def test_attributes_built_from_templates(
    extra: dict[str, Any], body: Any, expected: dict[str, Any]
) -> None:
    event = _event(_source(**SHOP, **extra), body)
    base = {"specversion": "1.0", "type": "com.shop.x", "source": "/shop"}
    assert event.attributes == {**base, "id": "minted", **expected,
                                "datacontenttype": "application/json"}  # fmt: skip
    assert event.kind is DataKind.JSON
    assert event.value == body


@pytest.mark.parametrize(
    ("event", "body", "pointers"),
    [
        ({"type": "com.shop.{body.event}"}, {}, ["/body/event"]),
        ({"id": "{headers.x-delivery}"}, {"event": "x"}, ["/headers/x-delivery"]),
        ({"source": ["{body.repo.url}", "{body.org}"]}, {"event": "x", "org": {"a": 1}},
         ["/body/repo/url", "/body/org"]),
        ({"type": "{body.items.3}", "id": "{body.id}"}, {"items": []},
         ["/body/items/3", "/body/id"]),
    ],
)  # fmt: skip
def test_required_attributes_that_do_not_resolve_are_422(
    event: dict[str, Any], body: Any, pointers: list[str]
) -> None:
    source = _source(**{**SHOP, **event})
    with pytest.raises(TemplateUnresolved) as caught:
        _event(source, body)
    error = caught.value
    assert error.status == 422
    assert [v.pointer for v in error.errors] == pointers
    for violation in error.errors:
        assert violation.detail.startswith("attribute '")
        assert "{" + violation.pointer[1:].replace("/", ".") + "}" in violation.detail
        assert violation.detail.split("{", 1)[1].split("}")[0] in error.detail


@pytest.mark.parametrize(
    ("extra", "body"),
    [
        ({"time": "{body.t}"}, {"event": "x", "t": "yesterday"}),
        ({"time": "{body.t}"}, {"event": "x", "t": 10**15}),  # milliseconds, say
        ({"source": "{body.s}"}, {"event": "x", "s": "not a uri"}),
        ({"subject": "{body.s}"}, {"event": "x", "s": "bell\x07"}),
    ],
)
def test_templated_values_must_still_be_valid_cloudevents(extra: dict[str, Any], body: Any) -> None:
    with pytest.raises(InvalidEvent):
        _event(_source(**{**SHOP, **extra}), body)


def test_a_template_is_a_value() -> None:
    assert compile_template("{body.a}") == Template("{body.a}")
    assert compile_template("{body.a}").single == Reference("body", ("a",))
    assert compile_template("x{body.a}").single is None
