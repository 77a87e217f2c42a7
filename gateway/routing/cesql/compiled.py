"""A compiled CESQL node: its closure and static type, and the implicit casts between closures
(spec 3.7) that operators and functions apply to their operands.

Closures return None for a failed evaluation: an error was reported (a missing attribute, a
failed cast, a math or function error) and the value is the zero value of the node's type.
Whoever consumes a None fails in turn (spec 3.2, 3.3), so an error anywhere makes the whole
expression evaluate to the zero value of its type, as the TCK expects (`true AND (1 != 1 / 0)`
is false with a MathError).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.routing.cesql.casting import Report, cast, string_to_bool, string_to_int
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

Attributes = Mapping[str, object]
Fn = Callable[[Attributes, Report], Any]


@dataclass(frozen=True, slots=True)
class Code:
    """A compiled node: its closure and static type (None: an attribute, whose type is known
    only per event); `constant` when `value` is fixed and evaluating reports no error."""

    fn: Fn
    type: Type | None
    constant: bool = False
    value: Value = False
    attribute: str | None = None  # the name, when the node is an attribute reference
    cast_of: str | None = None  # the name, when the node is INT/BOOL/STRING(attribute)

    def reads(self, target: Type) -> str | None:
        """The attribute this node reads, when its value as `target` is that attribute's
        value as `target` (so an operator may read the attribute itself on its fast path)."""
        if self.attribute is not None:
            return self.attribute
        return self.cast_of if self.type is target else None


def constant(value: Value) -> Code:
    return Code(lambda attributes, report: value, type_of(value), True, value)


def fold(code: Code, *operands: Code) -> Code:
    """`code` as a constant when all its operands are and evaluating it reports nothing."""
    if not all(operand.constant for operand in operands):
        return code
    errors: list[tuple[ErrorKind, str]] = []
    value = code.fn({}, lambda kind, message: errors.append((kind, message)))
    return code if errors or value is None else constant(value)


def as_type(code: Code, target: Type) -> Fn:
    """A closure giving `code`'s value cast to `target` (spec 3.7), None on failure."""
    if code.type is target:
        return code.fn
    if code.attribute is not None:
        return _fetch(code.attribute, target)
    if code.type is None:
        return _cast_dynamic(code.fn, target)
    cast_fn = _cast_static(code.fn, code.type, target)
    if code.constant:
        folded = fold(Code(cast_fn, target), code)
        if folded.constant:
            return folded.fn
    return cast_fn


def missing_attribute(name: str) -> str:
    return f"missing attribute '{name}'"


def _fetch(name: str, target: Type) -> Fn:
    """An attribute read and cast in one closure (the hot path of most filters)."""
    cls, message = PYTHON_TYPE[target], missing_attribute(name)

    def fetch(attributes: Attributes, report: Report) -> Any:
        value = attributes.get(name)
        if value.__class__ is cls:
            return value
        if value is None:
            report(ErrorKind.MISSING_ATTRIBUTE, message)
            return None
        return cast(attribute_value(value), target, report)

    if target is not Type.INTEGER:
        return fetch

    def fetch_integer(attributes: Attributes, report: Report) -> Any:
        value: Any = attributes.get(name)
        cls = value.__class__
        if cls is str:
            if len(value) < 10 and value.isdigit() and value.isascii():
                return int(value)
            return string_to_int(value, report)
        if cls is int and INT_MIN <= value <= INT_MAX:
            return value
        if value is None:
            report(ErrorKind.MISSING_ATTRIBUTE, message)
            return None
        return cast(attribute_value(value), target, report)

    return fetch_integer


def _cast_dynamic(fn: Fn, target: Type) -> Fn:
    cls = PYTHON_TYPE[target]

    def dynamic(attributes: Attributes, report: Report) -> Any:
        value = fn(attributes, report)
        if value.__class__ is cls or value is None:
            return value
        return cast(value, target, report)

    return dynamic


_CONVERSIONS: dict[tuple[Type, Type], Callable[[Any, Report], Any]] = {
    (Type.BOOLEAN, Type.STRING): lambda v, r: "true" if v else "false",
    (Type.INTEGER, Type.STRING): lambda v, r: str(v),
    (Type.BOOLEAN, Type.INTEGER): lambda v, r: 1 if v else 0,
    (Type.STRING, Type.INTEGER): string_to_int,
    (Type.INTEGER, Type.BOOLEAN): lambda v, r: v != 0,
    (Type.STRING, Type.BOOLEAN): string_to_bool,
}


def _cast_static(fn: Fn, source: Type, target: Type) -> Fn:
    convert = _CONVERSIONS[source, target]

    def static(attributes: Attributes, report: Report) -> Any:
        value = fn(attributes, report)
        return None if value is None else convert(value, report)

    return static
