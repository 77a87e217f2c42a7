"""CESQL's type system (spec 3.1): the three primitive types, their zero values and how an
event attribute of any other type is seen (as a String, spec 3.2)."""

from __future__ import annotations

import base64
import datetime
import enum

Value = bool | int | str
# What a compiled node yields: a Value, or None for an attribute the event does not have.
Raw = bool | int | str | None

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


class Type(enum.Enum):
    """The primitive types (spec 3.1)."""

    BOOLEAN = "Boolean"
    INTEGER = "Integer"
    STRING = "String"


ZERO: dict[Type, Value] = {Type.BOOLEAN: False, Type.INTEGER: 0, Type.STRING: ""}
PYTHON_TYPE: dict[Type, type] = {Type.BOOLEAN: bool, Type.INTEGER: int, Type.STRING: str}


def type_of(value: Value) -> Type:
    """The CESQL type of a primitive Python value (bool before int: bool is an int subclass)."""
    if value.__class__ is bool:
        return Type.BOOLEAN
    if value.__class__ is int:
        return Type.INTEGER
    return Type.STRING


def attribute_value(value: object) -> Value:
    """An attribute as CESQL sees it: primitives as they are, anything else as a String in its
    canonical form (spec 3.2; CE core Type System)."""
    cls = value.__class__
    if cls is str or cls is bool:
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        number = int(value)
        # CE core Integer is 32-bit; a wider number is not a CESQL Integer, only text.
        return number if INT_MIN <= number <= INT_MAX else str(number)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return str(value)


def show(value: Value) -> str:
    """A value quoted for an error message, long strings shortened."""
    if value.__class__ is bool:
        return "TRUE" if value else "FALSE"
    if value.__class__ is int:
        return str(value)
    text = str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return "'" + text.replace("'", "\\'") + "'"
