"""The operators of CESQL v1 (spec 3.4) built as closures over their compiled operands.

An operand that failed (None, see `compiled`) makes the operator fail too; an operator's own
error (division by zero, overflow) fails it as well, except at the root of the expression
(`keep`), where its own value is the result: `ABS(-2147483648)` is 2147483647 with a MathError.
`x NOT LIKE p` and `x NOT IN (...)` are `NOT (x LIKE p)` and `NOT (x IN (...))` (spec 3.4.3,
3.4.5).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from gateway.routing.cesql.casting import Report, cast
from gateway.routing.cesql.compiled import Attributes, Code, Fn, as_type
from gateway.routing.cesql.errors import ErrorKind
from gateway.routing.cesql.functions import FunctionFailure
from gateway.routing.cesql.patterns import compile_pattern, shape
from gateway.routing.cesql.values import INT_MAX, INT_MIN, PYTHON_TYPE, Type, Value, type_of

_ARITHMETIC: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
_ORDER: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _overflow(value: int, report: Report, keep: bool) -> int | None:
    # The spec leaves overflow open; like ABS (spec 3.5.2) the value saturates, with a MathError.
    report(ErrorKind.MATH, f"integer overflow: {value} is outside the 32-bit range")
    if not keep:
        return None
    return INT_MAX if value > INT_MAX else INT_MIN


def negation(operand: Code) -> Code:
    """`NOT x: Boolean -> Boolean` (spec 3.4.1)."""
    fn = as_type(operand, Type.BOOLEAN)

    def negate(a: Attributes, r: Report) -> bool | None:
        value = fn(a, r)
        return None if value is None else not value

    return Code(negate, Type.BOOLEAN)


def minus(operand: Code, keep: bool) -> Code:
    """`-x: Integer -> Integer` (spec 3.4.1)."""
    fn = as_type(operand, Type.INTEGER)

    def negative(a: Attributes, r: Report) -> int | None:
        value = fn(a, r)
        if value is None:
            return None
        return _overflow(-value, r, keep) if value == INT_MIN else -value

    return Code(negative, Type.INTEGER)


def binary(symbol: str, left: Code, right: Code, keep: bool) -> Code:
    """Arithmetic, comparison and logic operators (spec 3.4.2)."""
    if symbol in ("AND", "OR", "XOR"):
        return Code(_logic(symbol, left, right), Type.BOOLEAN)
    if symbol in ("=", "!=", "<>"):
        return Code(_equality(symbol != "=", left, right), Type.BOOLEAN)
    if symbol in _ORDER:
        return Code(_order(symbol, left, right), Type.BOOLEAN)
    lf, rf = as_type(left, Type.INTEGER), as_type(right, Type.INTEGER)
    if symbol in _ARITHMETIC:
        return Code(_arithmetic(_ARITHMETIC[symbol], lf, rf, keep), Type.INTEGER)
    return Code(_division(symbol == "%", lf, rf, keep), Type.INTEGER)


def _arithmetic(compute: Callable[[int, int], int], lf: Fn, rf: Fn, keep: bool) -> Fn:
    def arithmetic(a: Attributes, r: Report) -> int | None:
        x, y = lf(a, r), rf(a, r)
        if x is None or y is None:
            return None
        value = compute(x, y)
        return value if INT_MIN <= value <= INT_MAX else _overflow(value, r, keep)

    return arithmetic


def _division(modulo: bool, lf: Fn, rf: Fn, keep: bool) -> Fn:
    # Spec 3.4.2: truncated division; the remainder takes the sign of the dividend; a zero
    # divisor gives 0 and a MathError.
    def division(a: Attributes, r: Report) -> Any:
        x, y = lf(a, r), rf(a, r)
        if x is None or y is None:
            return None
        if y == 0:
            r(ErrorKind.MATH, "division by zero")
            return 0 if keep else None
        if modulo:
            rest = abs(x) % abs(y)
            return -rest if x < 0 else rest
        quotient = abs(x) // abs(y)
        if (x < 0) != (y < 0):
            return -quotient
        return quotient if quotient <= INT_MAX else _overflow(quotient, r, keep)

    return division


def _order(symbol: str, left: Code, right: Code) -> Fn:
    lf, rf = as_type(left, Type.INTEGER), as_type(right, Type.INTEGER)
    if right.constant and right.type is Type.INTEGER:
        bound: int = right.value  # type: ignore[assignment]
        against = _order_against(symbol, lf, bound)
        name = left.reads(Type.INTEGER)
        return against if name is None else _order_attribute(symbol, name, bound, against)
    compare = _ORDER[symbol]

    def order(a: Attributes, r: Report) -> bool | None:
        x, y = lf(a, r), rf(a, r)
        if x is None or y is None:
            return None
        return compare(x, y)

    return order


def _order_against(symbol: str, lf: Fn, bound: int) -> Fn:
    """`x < 100` and friends, the comparison written out (no call per evaluation)."""
    if symbol == "<":

        def less(a: Attributes, r: Report) -> bool | None:
            x = lf(a, r)
            return None if x is None else x < bound

        return less
    if symbol == "<=":

        def at_most(a: Attributes, r: Report) -> bool | None:
            x = lf(a, r)
            return None if x is None else x <= bound

        return at_most
    if symbol == ">":

        def greater(a: Attributes, r: Report) -> bool | None:
            x = lf(a, r)
            return None if x is None else x > bound

        return greater

    def at_least(a: Attributes, r: Report) -> bool | None:
        x = lf(a, r)
        return None if x is None else x >= bound

    return at_least


def _order_attribute(symbol: str, name: str, bound: int, general: Fn) -> Fn:
    """`INT(amount) > 100` reading a short decimal attribute directly; anything else (missing,
    signed, long, not a string) takes the general path."""
    compare = _ORDER[symbol]

    def fast(a: Attributes, r: Report) -> Any:
        value: Any = a.get(name)
        if value.__class__ is str and len(value) < 10 and value.isdigit() and value.isascii():
            return compare(int(value), bound)
        return general(a, r)

    return fast


def _equality(negated: bool, left: Code, right: Code) -> Fn:
    # Spec 3.7: `=` is ambiguous, so the right operand's type picks the overload and the left
    # operand is cast to it.
    if right.type is None:
        return _equality_dynamic(negated, left.fn, right.fn)
    lf = as_type(left, right.type)
    if right.constant:
        expected = right.value

        def against(a: Attributes, r: Report) -> bool | None:
            x = lf(a, r)
            return None if x is None else (x == expected) is not negated

        name = left.reads(Type.STRING)
        if right.type is not Type.STRING or name is None:
            return against

        def attribute_against(a: Attributes, r: Report) -> Any:
            # `source = '/shop'`: compare the attribute itself when it is a String.
            value: Any = a.get(name)
            if value.__class__ is str:
                return (value == expected) is not negated
            return against(a, r)

        return attribute_against
    rf = right.fn

    def equality(a: Attributes, r: Report) -> bool | None:
        x, y = lf(a, r), rf(a, r)
        if x is None or y is None:
            return None
        return (x == y) is not negated

    return equality


def _equality_dynamic(negated: bool, lf: Fn, rf: Fn) -> Fn:
    def equality(a: Attributes, r: Report) -> bool | None:
        x, y = lf(a, r), rf(a, r)
        if x is None or y is None:
            return None
        if x.__class__ is not y.__class__:
            x = cast(x, type_of(y), r)
            if x is None:
                return None
        return (x == y) is not negated

    return equality


def _logic(symbol: str, left: Code, right: Code) -> Fn:
    lf, rf = as_type(left, Type.BOOLEAN), as_type(right, Type.BOOLEAN)
    if symbol == "AND":
        # Spec 3.4.2: AND and OR MUST short-circuit; a failed left operand counts as false.
        def conjunction(a: Attributes, r: Report) -> Any:
            x = lf(a, r)
            if x is not True:
                return x
            return rf(a, r)

        return conjunction
    if symbol == "OR":

        def disjunction(a: Attributes, r: Report) -> bool | None:
            x = lf(a, r)
            if x is True:
                return True
            y = rf(a, r)
            return None if x is None else y

        return disjunction

    def exclusive(a: Attributes, r: Report) -> bool | None:
        x, y = lf(a, r), rf(a, r)
        if x is None or y is None:
            return None
        return x is not y

    return exclusive


_SIMPLE_TESTS: dict[str, Callable[[str, str], bool]] = {
    "exact": str.__eq__,
    "prefix": str.startswith,
    "suffix": str.endswith,
    "contains": str.__contains__,
}


def like(operand: Code, pattern: str, negated: bool) -> Code:
    """`x [NOT] LIKE pattern`, `x` cast to String (spec 3.4.3)."""
    fn = as_type(operand, Type.STRING)
    simple = shape(pattern)
    if simple is None:
        test = compile_pattern(pattern)

        def matches(a: Attributes, r: Report) -> bool | None:
            text = fn(a, r)
            return None if text is None else test(text) is not negated

        return Code(matches, Type.BOOLEAN)
    # `type LIKE 'com.example.%'` and friends: a string method, on the attribute when it
    # is one (the common filters), without a call per evaluation in between.
    method, literal = _SIMPLE_TESTS[simple[0]], simple[1]
    name = operand.reads(Type.STRING)
    if name is None:

        def simple_match(a: Attributes, r: Report) -> bool | None:
            text = fn(a, r)
            return None if text is None else method(text, literal) is not negated

        return Code(simple_match, Type.BOOLEAN)

    def attribute_match(a: Attributes, r: Report) -> Any:
        value: Any = a.get(name)
        if value.__class__ is str:
            return method(value, literal) is not negated
        text = fn(a, r)
        return None if text is None else method(text, literal) is not negated

    return Code(attribute_match, Type.BOOLEAN)


def membership(operand: Code, elements: list[Code], negated: bool) -> Code:
    """`x [NOT] IN (y1, ...)`: `=` semantics with `x`'s type as the cast target (spec 3.4.5)."""
    if all(element.constant for element in elements):
        return Code(_in_constants(operand, [e.value for e in elements], negated), Type.BOOLEAN)
    xf, efs = operand.fn, [element.fn for element in elements]

    def member(a: Attributes, r: Report) -> bool | None:
        x = xf(a, r)
        values = [ef(a, r) for ef in efs]
        if x is None or None in values:
            return None
        target, found, failed = type_of(x), False, False
        for value in values:
            if value.__class__ is not x.__class__:
                value = cast(value, target, r)
                failed = failed or value is None
            found = found or value == x
        return None if failed else found is not negated

    return Code(member, Type.BOOLEAN)


Table = tuple[frozenset[Value], tuple[tuple[ErrorKind, str], ...]]


def _in_constants(operand: Code, values: list[Value], negated: bool) -> Fn:
    """IN over literal elements: each cast to every possible target type once, up front."""
    tables: dict[Type, Table] = {}
    for target in Type:
        errors: list[tuple[ErrorKind, str]] = []

        def collect(
            kind: ErrorKind, message: str, errors: list[tuple[ErrorKind, str]] = errors
        ) -> None:
            errors.append((kind, message))

        cast_values = [cast(v, target, collect) for v in values]
        tables[target] = (frozenset(v for v in cast_values if v is not None), tuple(errors))
    by_class = {PYTHON_TYPE[target]: table for target, table in tables.items()}
    xf = operand.fn

    def member(a: Attributes, r: Report) -> bool | None:
        x = xf(a, r)
        if x is None:
            return None
        members, errors = by_class[x.__class__]
        if errors:
            for kind, message in errors:
                r(kind, message)
            return None
        return (x in members) is not negated

    return member


def invocation(invoke: Callable[..., Value], casts: list[Fn], keep: bool) -> Fn:
    """A call of a dispatched function (spec 3.5); a function's own error keeps its value only
    at the root of the expression."""
    if len(casts) == 1:
        only = casts[0]

        def unary(a: Attributes, r: Report) -> Any:
            value = only(a, r)
            if value is None:
                return None
            try:
                return invoke(value)
            except FunctionFailure as failure:
                r(failure.kind, failure.message)
                return failure.value if keep else None

        return unary

    def call(a: Attributes, r: Report) -> Any:
        arguments = [fn(a, r) for fn in casts]
        if None in arguments:
            return None
        try:
            return invoke(*arguments)
        except FunctionFailure as failure:
            r(failure.kind, failure.message)
            return failure.value if keep else None

    return call
