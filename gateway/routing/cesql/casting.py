"""The six casts between CESQL's primitive types (spec 3.7).

A failed cast reports a CastError and returns None: the value it stands for is the target type's
zero value (spec 3.7), and the operator that asked for the cast fails with it (spec 3.3).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.routing.cesql.errors import ErrorKind
from gateway.routing.cesql.values import INT_MAX, INT_MIN, Type, Value, show

Report = Callable[[ErrorKind, str], None]

# Spec 3.7 String -> Integer: base 10 with an optional sign; leading zeros carry no value.
_INTEGER = re.compile(r"([+-]?)0*([0-9]{1,10})")


def string_to_int(text: str, report: Report) -> int | None:
    if len(text) < 10 and text.isdigit() and text.isascii():
        return int(text)  # the common case, fast: nine ASCII digits or fewer always fit
    match = _INTEGER.fullmatch(text)
    if match is None:
        report(ErrorKind.CAST, f"cannot cast {show(text)} to Integer")
        return None
    number = int(match.group(1) + match.group(2))
    if INT_MIN <= number <= INT_MAX:
        return number
    report(ErrorKind.CAST, f"cannot cast {show(text)} to Integer: out of the 32-bit range")
    return None


def string_to_bool(text: str, report: Report) -> bool | None:
    # Spec 3.7 String -> Boolean: the lower-case form must be exactly "true" or "false".
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    report(ErrorKind.CAST, f"cannot cast {show(text)} to Boolean")
    return None


def to_int(value: Value, report: Report) -> int | None:
    cls = value.__class__
    if cls is int:
        return value  # type: ignore[return-value]
    if cls is bool:
        return 1 if value else 0
    return string_to_int(value, report)  # type: ignore[arg-type]


def to_bool(value: Value, report: Report) -> bool | None:
    cls = value.__class__
    if cls is bool:
        return value  # type: ignore[return-value]
    if cls is int:
        return value != 0
    return string_to_bool(value, report)  # type: ignore[arg-type]


def to_str(value: Value) -> str:
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[return-value]
    if cls is bool:
        return "true" if value else "false"
    return str(value)


def cast(value: Value, target: Type, report: Report) -> Value | None:
    """`value` as `target` with the spec 3.7 semantics; None when the cast fails."""
    if target is Type.INTEGER:
        return to_int(value, report)
    if target is Type.BOOLEAN:
        return to_bool(value, report)
    return to_str(value)
