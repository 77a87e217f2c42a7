"""CloudEvents SQL (CESQL v1.0.0): the `sql` filter dialect's expression language.

`compile(text)` parses and compiles an expression once (raising `CesqlParseError`); the resulting
`Expression` is evaluated per event against its context attributes: `matches` for filtering,
`evaluate` for the value and every error, `explain` for a short human reason.
"""

from __future__ import annotations

from gateway.routing.cesql.errors import CesqlParseError, ErrorKind, EvalError
from gateway.routing.cesql.expression import Expression, Result, compile
from gateway.routing.cesql.functions import Function
from gateway.routing.cesql.values import Type

__all__ = [
    "CesqlParseError",
    "ErrorKind",
    "EvalError",
    "Expression",
    "Function",
    "Result",
    "Type",
    "compile",
]
