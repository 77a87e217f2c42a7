"""Limits: the depth check before parsing, attribute sizes as headers, the `limits:` section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.attributes import check_sizes, header_size, validate
from gateway.config.loader import collect
from gateway.errors import InvalidEvent
from gateway.limits import MAX_DEPTH, Limits, check_depth, too_deep


@pytest.mark.parametrize(
    ("text", "limit", "deeper"),
    [
        (b"1", 0, False),
        (b"[]", 0, True),
        (b"[]", 1, False),
        (b"[[],[[]],{}]", 2, True),
        (b"[[],[[]],{}]", 3, False),
        (b'{"a":{"b":[1]}}', 2, True),
        (b'["[[[[[[", "]]]]"]', 1, False),  # brackets in strings nest nothing
        (b'["]]]]", [[[]]]]', 3, True),  # nor do they hide real nesting
        (b'["\\"[[[[", [[]]]', 3, False),  # an escaped quote does not end the string
        (b'["\\\\", [[[]]]]', 3, True),  # an escaped backslash does not escape the quote
        (b'["[", "", "]", [[[]]]]', 3, True),
        (b"[[[[", 2, False),  # unbalanced: left for the parser to refuse
        (b"[" * 5000 + b"]" * 5000, MAX_DEPTH, True),
    ],
)
def test_too_deep(text: bytes, limit: int, deeper: bool) -> None:
    assert too_deep(text, limit) is deeper
    assert too_deep(text, limit) is (_depth(text) > limit if _parses(text) else deeper)


def _parses(text: bytes) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _depth(text: bytes) -> int:
    def depth(value: object) -> int:
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        return 0

    return depth(json.loads(text))


def test_the_envelope_does_not_count() -> None:
    data = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    check_depth(data, "data")
    check_depth(b'{"data":' + data + b"}", "body", envelope=1)
    with pytest.raises(InvalidEvent, match=f"deeper than {MAX_DEPTH} levels"):
        check_depth(b'{"data":' + data + b"}", "body")


def test_a_nested_extension_value_is_refused_without_recursion() -> None:
    value: object = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(InvalidEvent, match="an array of 1"):
        validate({"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "ext": value})


@pytest.mark.parametrize(
    ("value", "size"),
    [("abc", 3), ("a b", 5), ('"%', 6), ("é", 6), (12345, 5), (True, 4), ("x" * 10_000, 10_000)],
)
def test_header_size_is_the_percent_encoded_length(value: str | int | bool, size: int) -> None:
    assert header_size(value, 100_000) == size


def test_check_sizes() -> None:
    check_sizes({"a": "x" * 10}, 10, 11)
    with pytest.raises(InvalidEvent, match="attribute 'a' is 11 bytes"):
        check_sizes({"a": "x" * 11}, 10, 100)
    with pytest.raises(InvalidEvent, match=r"limits\.max_attributes_bytes"):
        check_sizes({"a": "x" * 10, "b": "y" * 10}, 10, 21)


def _config(tmp_path: Path, limits: object) -> list[str]:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps({"schemas": "schemas", "subscriptions": [], "limits": limits}))
    config, problems = collect(path, env={})
    if config is not None:
        assert config.limits == (Limits(**limits) if isinstance(limits, dict) else Limits())
    return [f"{p.path}: {p.message}" for p in problems]


def test_limits_section(tmp_path: Path) -> None:
    assert _config(tmp_path, {"max_attribute_bytes": 2048, "max_attributes_bytes": 4096}) == []
    assert _config(tmp_path, None) == []
    assert _config(tmp_path, {"max_attribute_bytes": 10}) == [
        "limits.max_attribute_bytes: must be >= 256"
    ]
    assert _config(tmp_path, {"max_attribute_bytes": 9000}) == [
        "limits.max_attribute_bytes: must be <= limits.max_attributes_bytes (the limit for all "
        "attributes together)"
    ]
    assert _config(tmp_path, {"max_attribute": 1}) == [
        "limits.max_attribute: unknown key 'max_attribute' (did you mean 'max_attribute_bytes'?)"
    ]
