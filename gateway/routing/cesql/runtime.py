"""The helpers that generated `matches` functions call (see `codegen`) off their inline paths.

Each returns None where the closure compiler would report an error: the generated code then
returns False at once, which is all a fail-fast filter needs to know (spec 1.2). The semantics
are those of `casting`, `compiled` and `operators`, which stay the reference.
"""

from __future__ import annotations

from typing import Any

from gateway.routing.cesql.casting import cast, string_to_bool, string_to_int, to_str
from gateway.routing.cesql.errors import ErrorKind
from gateway.routing.cesql.values import (
    INT_MAX,
    INT_MIN,
    PYTHON_TYPE,
    Type,
    Value,
    attribute_value,
    type_of,
)

Tables = dict[type, frozenset[Value] | None]
_MEMO_SIZE = 1024
_MEMO_LENGTH = 16  # longer texts (leading zeros) are parsed each time


class Integers(dict[str, int | None]):
    """Strings read as Integer (spec 3.7), None for those that are not one, remembered: one
    event meets many filters, and a lookup costs a fraction of parsing. Bounded: it starts
    over when full."""

    def __missing__(self, text: str) -> int | None:
        number = string_to_int(text, ignore)
        if len(text) <= _MEMO_LENGTH:
            if len(self) >= _MEMO_SIZE:
                self.clear()
            self[text] = number
        return number


INTEGERS = Integers()


def ignore(kind: ErrorKind, message: str) -> None:
    """A report that drops the error: the None returned beside it is enough here."""


def attribute(value: Any) -> Value | None:
    """An attribute as CESQL sees it (spec 3.2); None when it is missing."""
    return None if value is None else attribute_value(value)


def as_string(value: Any) -> str | None:
    """An attribute that is not a str, cast to String (spec 3.2, 3.7)."""
    if value is None:
        return None
    return to_str(attribute(value))  # type: ignore[arg-type]


def as_integer(value: Any) -> int | None:
    """An attribute that is not a str, cast to Integer (spec 3.2, 3.7)."""
    cls = value.__class__
    if cls is int and INT_MIN <= value <= INT_MAX:
        return value  # type: ignore[no-any-return]
    if value is None:
        return None
    return cast(attribute(value), Type.INTEGER, ignore)  # type: ignore[arg-type,return-value]


def as_boolean(value: Any) -> bool | None:
    """An attribute that is not a bool, cast to Boolean (spec 3.2, 3.7)."""
    if value is None:
        return None
    return cast(attribute(value), Type.BOOLEAN, ignore)  # type: ignore[arg-type,return-value]


def string_integer(text: str) -> int | None:
    return string_to_int(text, ignore)


def string_boolean(text: str) -> bool | None:
    return string_to_bool(text, ignore)


def equal(x: Value, y: Value) -> bool | None:
    """`x = y` for values of different types: `x` cast to the type of `y` (spec 3.7)."""
    cast_x = cast(x, type_of(y), ignore)
    return None if cast_x is None else cast_x == y


def member(x: Value, values: tuple[Value, ...]) -> bool | None:
    """`x IN (values)` over computed elements, each cast to the type of `x` (spec 3.4.5)."""
    target, found = type_of(x), False
    for value in values:
        if value.__class__ is not x.__class__:
            cast_value = cast(value, target, ignore)
            if cast_value is None:
                return None
            value = cast_value
        found = found or value == x
    return found


def lookup(value: Any, tables: Tables) -> bool | None:
    """`attribute IN (literals)` for an attribute that is not a str: its table by the class
    it is seen as; None when it is missing or a literal does not cast to its type."""
    seen = attribute(value)
    if seen is None:
        return None
    members = tables[seen.__class__]
    return None if members is None else seen in members


def tables(values: list[Value]) -> Tables:
    """For `IN` over literals: the literals cast to each type, None where a cast fails."""
    by_class: Tables = {}
    for target in Type:
        cast_values = [cast(v, target, ignore) for v in values]
        members = frozenset(v for v in cast_values if v is not None)
        by_class[PYTHON_TYPE[target]] = None if None in cast_values else members
    return by_class


def divide(x: int, y: int) -> int | None:
    # Spec 3.4.2: truncated division; a zero divisor is a MathError; INT_MIN / -1 overflows.
    if y == 0:
        return None
    quotient = abs(x) // abs(y)
    if (x < 0) != (y < 0):
        return -quotient
    return quotient if quotient <= INT_MAX else None


def modulo(x: int, y: int) -> int | None:
    # Spec 3.4.2: the remainder takes the sign of the dividend.
    if y == 0:
        return None
    rest = abs(x) % abs(y)
    return -rest if x < 0 else rest
