"""A compiled CESQL expression and how it is applied to an event's attributes.

`evaluate` is the complete evaluation mode of spec 4.1 (value and every error); `matches` is the
filter of spec 1.2, which passes only a Boolean true reached without any error, and stops at the
first error (fail-fast, as spec 1.2 advises for filtering).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from gateway.routing.cesql.codegen import Matcher, generate
from gateway.routing.cesql.compiled import Fn
from gateway.routing.cesql.compiler import Compiler
from gateway.routing.cesql.errors import ErrorKind, EvalError
from gateway.routing.cesql.functions import Function, Functions
from gateway.routing.cesql.parser import parse
from gateway.routing.cesql.values import ZERO, Type, Value, show

_BUILTIN_FUNCTIONS = Functions()
_LABELS = {
    ErrorKind.MATH: "math error",
    ErrorKind.CAST: "cast error",
    ErrorKind.FUNCTION_EVALUATION: "function error",
    ErrorKind.GENERIC: "error",
}


@dataclass(frozen=True, slots=True)
class Result:
    """The two outputs of an evaluation (spec 1): a value and the errors met on the way."""

    value: Value
    errors: tuple[EvalError, ...]


class _Abort(Exception):
    """Stops a fail-fast evaluation at its first error."""


def _abort(kind: ErrorKind, message: str) -> NoReturn:
    raise _Abort


def _fail_fast(fn: Fn) -> Matcher:
    """`matches` over the closures, for a tree the code generator declined."""

    def matches(attributes: Mapping[str, object]) -> bool:
        try:
            return fn(attributes, _abort) is True
        except _Abort:
            return False

    return matches


class Expression:
    """One CESQL expression, parsed and compiled once; evaluating it never raises.

    `warnings` lists legal constructs that are probably not what the author meant (operator
    grouping surprises, calls to functions that do not exist, over-long attribute names, a
    value whose type is statically Integer or String and so never passes as a filter).

    `matches(attributes)` is the filter (spec 1.2): True only for Boolean true reached without
    any error, stopping at the first error. It is the generated function itself, not a method
    calling it: filters run it per event per subscription.
    """

    __slots__ = ("_fn", "_zero", "matches", "source", "warnings")
    matches: Matcher

    def __init__(
        self, source: str, fn: Fn, match: Matcher, zero: Value, warnings: tuple[str, ...]
    ) -> None:
        self.source = source
        self.warnings = warnings
        self._fn = fn
        self._zero = zero
        self.matches = match

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def evaluate(self, attributes: Mapping[str, object]) -> Result:
        """Complete evaluation: the value and every error (spec 4.1)."""
        errors: list[EvalError] = []

        def report(kind: ErrorKind, message: str) -> None:
            errors.append(EvalError(kind, message))

        value = self._fn(attributes, report)
        # Spec 3.3: a failed expression yields the zero value of its type.
        return Result(self._zero if value is None else value, tuple(errors))

    def explain(self, attributes: Mapping[str, object]) -> str:
        """A short reason for the outcome, e.g. "missing attribute 'amount'"."""
        result = self.evaluate(attributes)
        if result.errors:
            first = result.errors[0]
            label = _LABELS.get(first.kind)
            reason = f"{label}: {first.message}" if label else first.message
            more = len(result.errors) - 1
            return reason + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
        if result.value is True:
            return "evaluated to true"
        if result.value is False:
            return "evaluated to false"
        kind = "an Integer" if isinstance(result.value, int) else "a String"
        return f"evaluated to {kind} ({show(result.value)}), not a Boolean"


def compile(text: str, functions: Iterable[Function] = ()) -> Expression:
    """Parse and compile `text`; raises CesqlParseError. `functions` adds user-defined
    functions to the built-ins (raises ValueError when they break the overload rules)."""
    user = tuple(functions)
    registry = Functions(user) if user else _BUILTIN_FUNCTIONS
    tree, warnings = parse(text)
    compiler = Compiler(registry)
    code = compiler.compile(tree, keep=True)
    # Spec 3.2: when the type cannot be known (a lone attribute), assume Boolean.
    zero = False if code.type is None else ZERO[code.type]
    unknown = tuple(f"{message}: the call is always false" for message in compiler.unknown)
    if code.type is not None and code.type is not Type.BOOLEAN:
        # Subscriptions API 3.2.4 (sql): only a Boolean true passes; this one can never be.
        article = "an" if code.type is Type.INTEGER else "a"
        unknown += (f"the value is {article} {code.type.value}, never a Boolean: no event matches",)
    # The fail-fast filter runs as generated code; evaluate keeps the closures (same semantics).
    match = generate(tree, registry) or _fail_fast(code.fn)
    return Expression(text, code.fn, match, zero, tuple(dict.fromkeys((*warnings, *unknown))))
