"""Context attributes against the CloudEvents type system (CE core 1.0.2, SPECS §1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.attributes import validate
from gateway.errors import InvalidEvent

BASE: dict[str, object] = {
    "id": "A234-1234-1234",
    "source": "https://github.com/cloudevents",
    "specversion": "1.0",
    "type": "com.github.pull_request.opened",
}


def _with(**changes: object) -> dict[str, object]:
    return {**BASE, **changes}


def test_minimal_event_is_kept_as_is() -> None:
    assert validate(BASE) == BASE


def test_values_are_kept_exactly_with_their_types_and_order() -> None:
    raw = _with(
        time="2018-04-05T17:31:00.123456789+01:30",
        comexampleothervalue=5,
        flag=True,
        neg=-2147483648,
        s="5",
    )
    out = validate(raw)
    assert out == raw
    assert list(out) == list(raw)
    assert out["flag"] is True
    assert out["s"] == "5"


def test_null_means_unset() -> None:
    out = validate(_with(subject=None, unsetextension=None, time=None))
    assert out == BASE


def test_returns_a_new_dict() -> None:
    raw = _with(x=None)
    out = validate(raw)
    out["extra"] = "y"
    assert "extra" not in raw
    assert "x" in raw


@pytest.mark.parametrize(
    "changes",
    [
        {"source": "/sensors/tn-1234567/alerts"},
        {"source": "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
        {"source": "1-555-123-4567"},
        {"source": "mailto:cncf-wg-serverless@lists.cncf.io"},
        {"source": "https://example.com/a%20b?q=1#frag"},
        {"source": "//[2001:db8::1]:8080/x"},
        {"source": "http://user@[::1]/x"},
        {"source": "?query"},
        {"source": "a/b:c"},  # ':' after the first segment
        {"source": "/devices/é"},  # IRI characters tolerated (RFC 3987)
        {"source": "https://例え.jp/a?q=é#ü"},
        {"dataschema": "https://example.com/schemas/order/v2.json"},
        {"dataschema": "urn:example:schema"},
        {"dataschema": "https://example.com/schema#v2"},
        {"dataschema": "https://example.com/schémas/v1"},
        {"time": "2018-04-05T17:31:00Z"},
        {"time": "2018-04-05t17:31:00z"},
        {"time": "2024-02-29T23:59:60-23:59"},  # leap day, leap second
        {"time": "2000-02-29T00:00:00.5Z"},
        {"time": "0000-01-31T00:00:00Z"},
        {"datacontenttype": "application/json"},
        {"datacontenttype": "TEXT/Plain; CharSet=utf-8"},
        {"datacontenttype": 'text/plain;charset="utf-8" ; format=flowed'},
        {"datacontenttype": 'multipart/mixed; boundary="a b;c=\\"d\\""'},
        {"datacontenttype": "application/vnd.example+json"},
        {"subject": "Euro € 😀"},
        {"subject": "\U0010fffd"},
        {"id": " "},
        {"ext": ""},  # extensions may be empty strings
        {"ext": 2147483647},
        {"ext": False},
        {"x" * 21: "long names are allowed (SHOULD NOT only)"},
        {"123": "digits only"},
    ],
)
def test_valid(changes: dict[str, object]) -> None:
    assert validate(_with(**changes)) == _with(**changes)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        # Required attributes (CE core, REQUIRED attributes).
        ({k: v for k, v in BASE.items() if k != "id"}, "id"),
        ({k: v for k, v in BASE.items() if k != "source"}, "source"),
        ({k: v for k, v in BASE.items() if k != "specversion"}, "specversion"),
        ({k: v for k, v in BASE.items() if k != "type"}, "type"),
        ({}, "id, source, specversion, type"),
        (_with(id=None), "id"),
        (_with(id=""), "'id'"),
        (_with(type=""), "'type'"),
        (_with(source=""), "'source'"),
        (_with(subject=""), "'subject'"),
        (_with(dataschema=""), "'dataschema'"),
        # specversion: only 1.0; the detail says so.
        (_with(specversion="0.3"), "accepted versions are: 1.0"),
        (_with(specversion="1.0.2"), "'specversion'"),
        (_with(specversion="1"), "'specversion'"),
        # Core attributes are Strings.
        (_with(id=5), "'id' must be a String"),
        (_with(type=True), "'type' must be a String"),
        (_with(time=1712345678), "'time' must be a String"),
        (_with(subject=["a"]), "'subject' must be a String"),
        # Names (CE core, Attribute Naming Convention).
        (_with(**{"Ext": "x"}), "'Ext'"),
        (_with(**{"my-ext": "x"}), "'my-ext'"),
        (_with(**{"my_ext": "x"}), "'my_ext'"),
        (_with(**{"ext\u00e9": "x"}), "names consist of"),
        (_with(**{"": "x"}), "''"),
        (_with(data="x"), "'data' is reserved"),
        # Extension value types.
        (_with(ext=1.5), "'ext' is a non-integer number"),
        (_with(ext=1.0), "'ext' is a non-integer number"),
        (_with(ext={"a": 1}), "'ext' is an object"),
        (_with(ext=[1]), "'ext' is an array"),
        (_with(ext=2147483648), "'ext' is 2147483648"),
        (_with(ext=-2147483649), "outside the signed 32-bit"),
        # String contents (CE core, Type System, String).
        (_with(subject="a\x00b"), "U+0000"),
        (_with(subject="line\nbreak"), "U+000A"),
        (_with(ext="tab\t"), "U+0009"),
        (_with(ext="\x7f"), "U+007F"),
        (_with(ext="\x85"), "U+0085"),
        (_with(ext="\x9f"), "U+009F"),
        (_with(ext="\ufdd0"), "U+FDD0"),
        (_with(ext="\ufffe"), "U+FFFE"),
        (_with(ext="\U0001ffff"), "U+1FFFF"),
        (_with(ext="\U0010fffe"), "U+10FFFE"),
        (_with(ext="\ud800"), "U+D800"),
        (_with(id="\udcff"), "U+DCFF"),
        # source: URI-reference (RFC 3986 4.1).
        (_with(source="has space"), "'source' must be a URI-reference"),
        (_with(source="/bad%zzescape"), "'source'"),
        (_with(source="/trailing%4"), "'source'"),
        (_with(source="1:2"), "'source'"),  # ':' in the first segment without a scheme
        (_with(source="/a#b#c"), "'source'"),
        (_with(source="/sensors/\u00fc x"), "'source'"),
        (_with(source="/path/[x]"), "'source'"),
        (_with(source='/a"b'), "'source'"),
        # dataschema: absolute URI.
        (_with(dataschema="/schemas/order.json"), "'dataschema' must be an absolute URI"),
        (_with(dataschema="order.json"), "'dataschema'"),
        (_with(dataschema="1http://x"), "'dataschema'"),
        # time: RFC 3339.
        (_with(time="2018-04-05"), "'time' must be an RFC 3339"),
        (_with(time="2018-04-05T17:31:00"), "'time'"),  # offset required
        (_with(time="2018-04-05 17:31:00Z"), "'time'"),
        (_with(time="2018-13-05T17:31:00Z"), "'time'"),
        (_with(time="2018-00-05T17:31:00Z"), "'time'"),
        (_with(time="2018-04-31T17:31:00Z"), "'time'"),
        (_with(time="2023-02-29T17:31:00Z"), "'time'"),
        (_with(time="1900-02-29T17:31:00Z"), "'time'"),
        (_with(time="2018-04-00T17:31:00Z"), "'time'"),
        (_with(time="2018-04-05T24:00:00Z"), "'time'"),
        (_with(time="2018-04-05T17:60:00Z"), "'time'"),
        (_with(time="2018-04-05T17:31:61Z"), "'time'"),
        (_with(time="2018-04-05T17:31:00+24:00"), "'time'"),
        (_with(time="2018-04-05T17:31:00+01:60"), "'time'"),
        (_with(time="2018-04-05T17:31:00.Z"), "'time'"),
        (_with(time="2018-04-05T17:31:00+0100"), "'time'"),
        (_with(time="\uff12\uff10\uff11\uff18-04-05T17:31:00Z"), "'time'"),  # fullwidth digits
        # datacontenttype: RFC 2046.
        (_with(datacontenttype="json"), "'datacontenttype' must be an RFC 2046"),
        (_with(datacontenttype="application/"), "'datacontenttype'"),
        (_with(datacontenttype="application/json;"), "'datacontenttype'"),
        (_with(datacontenttype="application/json; charset"), "'datacontenttype'"),
        (_with(datacontenttype="application/json; charset=a b"), "'datacontenttype'"),
        (_with(datacontenttype='text/plain; a="unterminated'), "'datacontenttype'"),
        (_with(datacontenttype="text /plain"), "'datacontenttype'"),
        (_with(datacontenttype="text/plain/x"), "'datacontenttype'"),
    ],
)
def test_invalid(raw: dict[str, object], names: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate(raw)
    assert names in caught.value.detail
    assert caught.value.status == 400


# Printable ASCII without the characters a URI never holds.
_URI_SAFE = st.text(
    alphabet=st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?@!$&'()*+,;="
    ),
    min_size=1,
)


@given(_URI_SAFE)
def test_any_relative_path_is_a_uri_reference(tail: str) -> None:
    source = "/" + tail.replace("?", "").replace(":", "")
    assert validate(_with(source=source))["source"] == source


@given(st.text(min_size=1))
def test_extension_strings_pass_iff_free_of_forbidden_characters(value: str) -> None:
    forbidden = any(
        ord(ch) < 0x20
        or 0x7F <= ord(ch) <= 0x9F
        or 0xFDD0 <= ord(ch) <= 0xFDEF
        or (ord(ch) & 0xFFFE) == 0xFFFE
        for ch in value
    )
    if forbidden:
        with pytest.raises(InvalidEvent, match="'ext' contains U\\+"):
            validate(_with(ext=value))
    else:
        assert validate(_with(ext=value))["ext"] == value
