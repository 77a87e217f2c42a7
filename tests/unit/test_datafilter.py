"""The `data` filter dialect: JSON Pointer conditions on `data`."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.event import DataKind, Event
from gateway.routing.datafilter import DataFilter, DataFilterError

ORDER = {
    "order": {"total": 150, "currency": "EUR", "lines": [{"sku": "MUG-1"}, {"sku": "TEA-2"}]},
    "customer": {"country": "DE", "vip": True},
    "a/b": {"~x": 1},
    "note": None,
}


def event(data: Any = ORDER, kind: DataKind = DataKind.JSON) -> Event:
    attrs: dict[str, str | int | bool] = {"specversion": "1.0", "id": "1", "source": "/s",
                                          "type": "t"}
    if kind is DataKind.NONE:
        return Event(attrs)
    raw = orjson.dumps(data) if kind is DataKind.JSON else str(data).encode()
    return Event(attrs, raw, kind, data if kind is DataKind.JSON else None)


@pytest.mark.parametrize(
    ("spec", "matches"),
    [
        ({"/order/total": {">": 100}}, True),
        ({"/order/total": {">": 150}}, False),
        ({"/order/total": {">=": 150, "<": 151}}, True),
        ({"/order/total": {"<=": 149.5}}, False),
        ({"/order/total": 150}, True),  # shorthand for "="
        ({"/order/total": 150.0}, True),  # JSON numbers compare by value
        ({"/order/total": "150"}, False),  # a string is not a number
        ({"/order/total": {"!=": 100}}, True),
        ({"/order/currency": {"in": ["EUR", "USD"]}}, True),
        ({"/order/currency": {"in": ["GBP"]}}, False),
        ({"/order/lines/0/sku": {"prefix": "MUG-"}}, True),
        ({"/order/lines/1/sku": {"suffix": "-2"}}, True),
        ({"/order/lines/2/sku": {"exists": False}}, True),
        ({"/order/lines/01/sku": {"exists": True}}, False),  # RFC 6901: no leading zeros
        ({"/customer/vip": True}, True),
        ({"/customer/vip": 1}, False),  # a boolean is not a number
        ({"/customer/country": {">": "CH"}}, True),  # strings order with strings
        ({"/customer/country": {">": 1}}, False),  # ...and never with numbers
        ({"/a~1b/~0x": 1}, True),  # ~1 is "/", ~0 is "~"
        ({"/note": None}, True),  # explicit JSON null
        ({"/note": {"exists": True}}, True),
        ({"/missing": {"!=": 1}}, False),  # a missing value fails every test but exists: false
        ({"/missing": {"exists": False}}, True),
        ({"/order/total": {">": 100}, "/customer/country": "FR"}, False),  # AND across pointers
        ({"": {"exists": True}}, True),  # "" is the whole document
    ],
)
def test_conditions(spec: dict[str, Any], matches: bool) -> None:
    compiled = DataFilter(spec, ("data",))
    assert compiled.match(event()) is matches
    assert (compiled.reason(event()) is None) is matches


@pytest.mark.parametrize("kind", [DataKind.TEXT, DataKind.BINARY, DataKind.NONE])
def test_non_json_data_never_matches(kind: DataKind) -> None:
    compiled = DataFilter({"/x": {"exists": False}}, ("data",))
    assert compiled.match(event("text", kind)) is False
    assert compiled.reason(event("text", kind)) == "the event has no JSON data"


def test_stored_events_are_parsed_when_needed() -> None:
    stored = Event({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"},
                   orjson.dumps(ORDER), DataKind.JSON)
    assert DataFilter({"/order/total": 150}, ("data",)).match(stored)


def test_reasons_name_the_pointer_and_value() -> None:
    compiled = DataFilter({"/order/total": {">": 500}}, ("data",))
    assert compiled.reason(event()) == "/order/total is 150, not > 500"
    assert DataFilter({"/nope": 1}, ("data",)).reason(event()) == "/nope is missing, not = 1"


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        ({}, ("data",), "maps JSON Pointers"),
        ({"order": 1}, ("data", "order"), "starts with '/'"),
        ({"/x": {}}, ("data", "/x"), "at least one condition"),
        ({"/x": {"~": 1}}, ("data", "/x", "~"), "unknown operator"),
        ({"/x": {">": [1]}}, ("data", "/x", ">"), "number or a string"),
        ({"/x": {"in": []}}, ("data", "/x", "in"), "non-empty list"),
        ({"/x": {"prefix": 3}}, ("data", "/x", "prefix"), "non-empty string"),
        ({"/x": {"exists": "yes"}}, ("data", "/x", "exists"), "true or false"),
    ],
)
def test_invalid_filters_name_the_offending_part(
    spec: Any, where: tuple[str, ...], message: str
) -> None:
    with pytest.raises(DataFilterError) as caught:
        DataFilter(spec, ("data",))
    assert caught.value.parts == where
    assert message in caught.value.message
