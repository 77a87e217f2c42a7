"""The `data` filter dialect: tests on JSON values inside `data`, addressed by JSON Pointer.

Our extension to the Subscriptions API dialects (CESQL cannot see `data`):

    - data:
        /order/total: {">": 100}             # ordering: numbers with numbers, strings with strings
        /customer/country: {in: [DE, FR]}    # one of the listed JSON values
        /sku: {prefix: MUG-}                 # prefix / suffix: strings only
        /coupon: {exists: false}             # presence (true) or absence (false) of the pointer
        /status: paid                        # shorthand for {"=": paid}

Every pointer's conditions must hold (AND), like the attribute dialects. A pointer that does not
resolve fails every condition except `exists: false`, and an event whose data is not JSON matches
no `data` filter. Equality is JSON equality (`1` equals `1.0`; `"1"` does not equal `1`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from gateway.event import UNPARSED, DataKind, Event

Test = Callable[[Any], bool]
_MISSING: Any = object()
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "prefix", "suffix", "in", "exists")


class DataFilterError(ValueError):
    def __init__(self, parts: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.parts = parts
        self.message = message


def _pointer(text: str) -> tuple[str, ...]:
    # RFC 6901: "" is the whole document; "/a/b"; "~1" is "/", "~0" is "~".
    if text == "":
        return ()
    if not text.startswith("/"):
        raise ValueError("a JSON Pointer is empty or starts with '/'")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/"))


def resolve(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value at the pointer, or _MISSING."""
    value = document
    for token in tokens:
        if isinstance(value, dict):
            value = value.get(token, _MISSING)
        elif isinstance(value, list) and token.isdigit() and (token == "0" or token[0] != "0"):
            index = int(token)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    if _number(a) and _number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _ordered(op: str, wanted: Any) -> Test:
    def compare(value: Any) -> bool:
        numbers = _number(wanted) and _number(value)
        if numbers or (isinstance(wanted, str) and isinstance(value, str)):
            if op == ">":
                return bool(value > wanted)
            if op == ">=":
                return bool(value >= wanted)
            if op == "<":
                return bool(value < wanted)
            return bool(value <= wanted)
        return False

    return compare


def _condition(op: str, operand: Any, at: tuple[str | int, ...]) -> Test:
    if op == "=":
        return lambda v: v is not _MISSING and _equal(v, operand)
    if op == "!=":
        return lambda v: v is not _MISSING and not _equal(v, operand)
    if op in (">", ">=", "<", "<="):
        if not (_number(operand) or isinstance(operand, str)):
            raise DataFilterError(at, f"'{op}' compares with a number or a string")
        return _ordered(op, operand)
    if op in ("prefix", "suffix"):
        if not isinstance(operand, str) or not operand:
            raise DataFilterError(at, f"'{op}' takes a non-empty string")
        if op == "prefix":
            return lambda v: isinstance(v, str) and v.startswith(operand)
        return lambda v: isinstance(v, str) and v.endswith(operand)
    if op == "in":
        if not isinstance(operand, list) or not operand:
            raise DataFilterError(at, "'in' takes a non-empty list of values")
        return lambda v: v is not _MISSING and any(_equal(v, o) for o in operand)
    if op == "exists":
        if not isinstance(operand, bool):
            raise DataFilterError(at, "'exists' takes true or false")
        return (lambda v: v is not _MISSING) if operand else (lambda v: v is _MISSING)
    raise DataFilterError(at, f"unknown operator '{op}' (supported: {', '.join(OPERATORS)})")


def _value(event: Event) -> Any:
    if event.kind is not DataKind.JSON or event.data is None:
        return _MISSING
    if event.value is not UNPARSED:
        return event.value
    try:
        return orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return _MISSING


class DataFilter:
    """Compiled `data` filter: (pointer text, tokens, [(description, test)])."""

    __slots__ = ("_checks", "_text")

    def __init__(self, body: object, parts: tuple[str | int, ...]) -> None:
        if not isinstance(body, dict) or not body:
            raise DataFilterError(parts, "'data' maps JSON Pointers to conditions")
        checks: list[tuple[str, tuple[str, ...], list[tuple[str, Test]]]] = []
        for pointer, spec in body.items():
            at = (*parts, str(pointer))
            try:
                tokens = _pointer(str(pointer))
            except ValueError as exc:
                raise DataFilterError(at, str(exc)) from None
            conditions = spec if isinstance(spec, dict) else {"=": spec}
            if not conditions:
                raise DataFilterError(at, "needs at least one condition")
            tests = [
                (f"{op} {json.dumps(operand)}", _condition(str(op), operand, (*at, str(op))))
                for op, operand in conditions.items()
            ]
            checks.append((str(pointer), tokens, tests))
        self._checks = tuple(checks)
        self._text = "data " + ", ".join(
            f"{p} {' and '.join(d for d, _ in tests)}" for p, _, tests in self._checks
        )

    def match(self, event: Event) -> bool:
        document = _value(event)
        if document is _MISSING:
            return False
        for _, tokens, tests in self._checks:
            value = resolve(document, tokens)
            for _, test in tests:
                if not test(value):
                    return False
        return True

    def reason(self, event: Event) -> str | None:
        """None when the filter matches, else why not."""
        document = _value(event)
        if document is _MISSING:
            return "the event has no JSON data"
        for pointer, tokens, tests in self._checks:
            value = resolve(document, tokens)
            for text, test in tests:
                if not test(value):
                    shown = "missing" if value is _MISSING else json.dumps(value)
                    return f"{pointer or '/'} is {shown}, not {text}"
        return None

    def describe(self) -> str:
        return self._text
