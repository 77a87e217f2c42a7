"""The errors of CESQL v1 (spec 3.3): the parse error `compile` raises and evaluation errors.

Evaluation never raises: every operator and function returns a value, and what went wrong is
collected as `EvalError` values beside it (spec 3.3, 4.1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CesqlParseError(Exception):
    """An expression that is not valid CESQL; `line` and `column` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class ErrorKind(enum.Enum):
    """The error types every engine MUST support (spec 3.3)."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_ATTRIBUTE = "missingAttribute"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class EvalError:
    """One error raised while evaluating an expression against an event."""

    kind: ErrorKind
    message: str
