"""Subscription filters: Subscriptions API 3.2.4 dialects, their errors, and match/explain."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.model import Subscription
from gateway.event import AttributeValue, Event
from gateway.routing.filters import FilterError, compile_filter, explain, match

ORDER: dict[str, AttributeValue] = {
    "specversion": "1.0",
    "id": "1",
    "source": "/shop",
    "type": "com.example.order.created",
    "subject": "order-eu",
    "priority": 5,
    "urgent": True,
}


def event(**changes: AttributeValue | None) -> Event:
    attributes = {**ORDER, **changes}
    return Event({k: v for k, v in attributes.items() if v is not None})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"exact": {"type": "com.example.order.created"}}, True),
        ({"exact": {"type": "com.example.order.Created"}}, False),  # case-sensitive
        ({"exact": {"type": "com.example.order"}}, False),
        ({"exact": {"type": "com.example.order.created", "source": "/shop"}}, True),
        ({"exact": {"type": "com.example.order.created", "source": "/other"}}, False),
        ({"exact": {"region": "eu"}}, False),  # missing attribute fails
        ({"not": {"exact": {"region": "eu"}}}, True),
        ({"prefix": {"type": "com.example.order."}}, True),
        ({"prefix": {"type": "com.example.ORDER."}}, False),
        ({"prefix": {"type": "com.example.order.created"}}, True),  # a whole value is a prefix
        ({"prefix": {"region": "e"}}, False),
        ({"suffix": {"subject": "-eu"}}, True),
        ({"suffix": {"subject": "-us"}}, False),
        ({"suffix": {"region": "u"}}, False),
        ({"exact": {"priority": "5"}}, True),  # Integer through its canonical string
        ({"exact": {"priority": 5}}, True),
        ({"prefix": {"priority": "6"}}, False),
        ({"exact": {"urgent": "true"}}, True),  # Boolean through its canonical string
        ({"exact": {"urgent": True}}, True),
        ({"exact": {"urgent": "True"}}, False),
        ({"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": ".created"}}]}, True),
        ({"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": ".paid"}}]}, False),
        ({"any": [{"exact": {"subject": "eu"}}, {"suffix": {"subject": "-eu"}}]}, True),
        ({"any": [{"exact": {"subject": "eu"}}, {"suffix": {"subject": "-us"}}]}, False),
        ({"not": {"exact": {"type": "com.example.order.test"}}}, True),
        ({"not": {"not": {"exact": {"source": "/shop"}}}}, True),
        ({"all": [{"any": [{"exact": {"source": "/x"}}, {"not": {"exact": {"id": "2"}}}]}]}, True),
    ],
)
def test_filter_semantics(spec: dict[str, Any], expected: bool) -> None:
    assert compile_filter(spec, "f").match(event()) is expected


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({}, "f", "a filter is a mapping with one dialect key"),
        ("exact", "f", "a filter is a mapping with one dialect key"),
        ({"exact": {"type": "a"}, "prefix": {"type": "b"}}, "f", "exactly one dialect key"),
        ({"regex": {"type": "a"}}, "f.regex", "unknown filter dialect 'regex'"),
        ({"sql": "EXISTS"}, "f.sql", "invalid CESQL at 1:"),
        ({"sql": ""}, "f.sql", "'sql' must be a CESQL expression"),
        ({"data": {"total": 1}}, "f.data.total", "starts with '/'"),
        ({"exact": {}}, "f.exact", "'exact' must map attribute names to values"),
        ({"prefix": ["type"]}, "f.prefix", "'prefix' must map attribute names to values"),
        ({"exact": {"": "a"}}, "f.exact.", "attribute names are lower-case letters and digits"),
        ({"exact": {"Type": "a"}}, "f.exact.Type", "attribute names are lower-case"),
        ({"suffix": {"type": ""}}, "f.suffix.type", "must not be empty"),
        ({"exact": {"type": 1.5}}, "f.exact.type", "must be a string"),
        ({"exact": {"type": None}}, "f.exact.type", "must be a string"),
        ({"all": []}, "f.all", "'all' must be a non-empty list of filters"),
        ({"any": {"exact": {"type": "a"}}}, "f.any", "'any' must be a non-empty list"),
        ({"any": [{"exact": {"type": "a"}}, {"bogus": 1}]}, "f.any[1].bogus", "unknown filter"),
        ({"not": [{"exact": {"type": "a"}}]}, "f.not", "a filter is a mapping"),
        ({"not": {"all": [{"exact": {"x": ""}}]}}, "f.not.all[0].exact.x", "must not be empty"),
    ],
)
def test_invalid_filters(spec: object, path: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(spec, "f")
    assert caught.value.path == path
    assert message in caught.value.message


def test_filter_error_parts_locate_the_offending_key() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter({"any": [{"exact": {"type": "a"}}, {"exact": {"x": ""}}]}, "")
    assert caught.value.parts == ("any", 1, "exact", "x")
    assert caught.value.path == "any[1].exact.x"


def test_unknown_dialect_lists_the_supported_ones() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter({"regex": "x"}, "f")
    for dialect in ("exact", "prefix", "suffix", "all", "any", "not"):
        assert dialect in caught.value.message


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ({"prefix": {"type": "com.example.order."}}, 'prefix type="com.example.order."'),
        ({"exact": {"type": "a", "subject": "b"}}, 'exact type="a" subject="b"'),
        (
            {"any": [{"exact": {"subject": "eu"}}, {"suffix": {"subject": "-eu"}}]},
            'any(exact subject="eu", suffix subject="-eu")',
        ),
        ({"not": {"exact": {"priority": 5}}}, 'not(exact priority="5")'),
        ({"all": [{"exact": {"x": 'say "hi"'}}]}, 'all(exact x="say \\"hi\\"")'),
    ],
)
def test_describe(spec: dict[str, Any], text: str) -> None:
    assert compile_filter(spec, "f").describe() == text


def subscription(**kw: Any) -> Subscription:
    filters = tuple(compile_filter(s, f"filters[{i}]") for i, s in enumerate(kw.pop("filters", ())))
    return Subscription(name="s", sink="http://127.0.0.1/", filters=filters, **kw)


@pytest.mark.parametrize(
    ("kw", "changes", "matched", "reason"),
    [
        ({}, {}, True, "matched"),
        ({"types": ("com.example.order.created",)}, {}, True, "matched"),
        (
            {"types": ("com.example.order.paid", "com.example.order.shipped")},
            {},
            False,
            "type com.example.order.created not in types "
            "[com.example.order.paid, com.example.order.shipped]",
        ),
        ({"source": "/shop"}, {}, True, "matched"),
        ({"source": "/shop"}, {"source": "/shop/eu"}, False, "source /shop/eu is not /shop"),
        (
            {"filters": [{"prefix": {"type": "com."}}, {"exact": {"subject": "x"}}]},
            {},
            False,
            'filters[1] (exact subject="x") did not match: subject is "order-eu"',
        ),
        (
            {"filters": [{"any": [{"exact": {"region": "eu"}}]}]},
            {},
            False,
            'filters[0] (any(exact region="eu")) did not match: none matched: '
            "any[0]: region is missing",
        ),
        (
            {
                "types": ("com.example.order.created",),
                "source": "/shop",
                "filters": [{"not": {"exact": {"subject": "order-us"}}}],
            },
            {},
            True,
            "matched",
        ),
    ],
)
def test_match_and_explain(
    kw: dict[str, Any], changes: dict[str, AttributeValue], matched: bool, reason: str
) -> None:
    sub, ev = subscription(**kw), event(**changes)
    assert match(sub, ev) is matched
    assert explain(sub, ev) == (matched, reason)


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        (
            [{"prefix": {"type": "com."}}, {"sql": "EXISTS amount AND INT(amount) > 100"}],
            'filters[1] (sql "EXISTS amount AND INT(amount) > 100") did not match: ',
        ),
        (
            [{"data": {"/total": {">": 100}}}],
            "filters[0] (data /total > 100) did not match: the event has no JSON data",
        ),
        (
            [{"not": {"prefix": {"type": "com.example."}}}],
            'filters[0] (not(prefix type="com.example.")) did not match: '
            'prefix type="com.example." matched',
        ),
    ],
)
def test_explain_says_which_filter_decided_and_why(
    filters: list[dict[str, Any]], reason: str
) -> None:
    matched, why = explain(subscription(filters=filters), event())
    assert matched is False
    assert why.startswith(reason), why


def test_sql_filters_pass_only_on_boolean_true_without_errors() -> None:
    assert match(subscription(filters=[{"sql": "subject = 'order-eu'"}]), event())
    assert not match(subscription(filters=[{"sql": "INT(subject) = 0"}]), event())  # cast error
    assert not match(subscription(filters=[{"sql": "LENGTH(subject)"}]), event())  # not Boolean
    nested = [{"any": [{"sql": "missing = 'x'"}, {"not": {"sql": "type LIKE 'org.%'"}}]}]
    assert match(subscription(filters=nested), event())


def test_every_filter_must_hold() -> None:
    sub = subscription(filters=[{"prefix": {"type": "com."}}, {"suffix": {"type": ".paid"}}])
    assert not match(sub, event())
    assert match(sub, event(type="com.example.order.paid"))
