"""CESQL functions (spec 3.5): the built-ins every engine MUST provide, user-defined functions
and the overload rules that dispatch a call by name and arity."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.routing.cesql.errors import ErrorKind
from gateway.routing.cesql.values import INT_MAX, INT_MIN, PYTHON_TYPE, ZERO, Type, Value

STR, INT, BOOL = Type.STRING, Type.INTEGER, Type.BOOLEAN
_NAME = re.compile(r"[A-Za-z][A-Za-z_]*")  # spec 2.4 function-identifier
# Unicode White_Space (spec 3.5.1 TRIM). Not str.isspace(), which also takes U+001C..U+001F.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True, slots=True)
class Function:
    """A user-defined function (spec 3.5: engines SHOULD allow them).

    `implementation` receives the arguments already cast to `parameters` (then `variadic` for
    the rest) and returns a value of type `returns`. If it raises, or returns another type, the
    call yields the zero value of `returns` and a FunctionEvaluationError (spec 3.5.3).
    """

    name: str
    parameters: tuple[Type, ...]
    returns: Type
    implementation: Callable[..., Value]
    variadic: Type | None = None


class FunctionFailure(Exception):
    """Raised by a function's implementation for an error that still has a value (spec 3.5.3):
    LEFT('abc', -2) is 'abc' with a FunctionEvaluationError."""

    def __init__(self, kind: ErrorKind, message: str, value: Value) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.value = value


@dataclass(frozen=True, slots=True)
class Overload:
    """One dispatchable signature; `invoke(*arguments)` returns a value or raises
    FunctionFailure, nothing else.

    `cast_only` marks INT, BOOL and STRING, which are the implicit cast of their argument;
    `pure` calls on constant arguments may be evaluated once, at compile time.
    """

    name: str
    parameters: tuple[Type, ...]
    variadic: Type | None
    returns: Type
    invoke: Callable[..., Value]
    pure: bool = True
    cast_only: bool = False

    def parameter(self, index: int) -> Type:
        if index < len(self.parameters):
            return self.parameters[index]
        assert self.variadic is not None
        return self.variadic


# -- built-ins (spec 3.5.1, 3.5.2) -----------------------------------------------------------


def _identity(value: Value) -> Value:
    return value


def _concat(*texts: str) -> str:
    return "".join(texts)


def _concat_ws(delimiter: str, *texts: str) -> str:
    return delimiter.join(texts)


def _trim(text: str) -> str:
    return text.strip(WHITESPACE)


def _left(text: str, count: int) -> str:
    if count < 0:
        message = f"LEFT: the length must not be negative ({count})"
        raise FunctionFailure(ErrorKind.FUNCTION_EVALUATION, message, text)
    return text[:count]


def _right(text: str, count: int) -> str:
    if count < 0:
        message = f"RIGHT: the length must not be negative ({count})"
        raise FunctionFailure(ErrorKind.FUNCTION_EVALUATION, message, text)
    return text[len(text) - count :] if count < len(text) else text


def _start(text: str, pos: int) -> int:
    """The 0-based start of SUBSTRING's 1-based (or, when negative, from the end) `pos`."""
    if pos > len(text) or pos < -len(text):
        message = f"SUBSTRING: position {pos} is outside a string of length {len(text)}"
        raise FunctionFailure(ErrorKind.FUNCTION_EVALUATION, message, "")
    return pos - 1 if pos > 0 else len(text) + pos


def _substring(text: str, pos: int) -> str:
    return "" if pos == 0 else text[_start(text, pos) :]


def _substring_length(text: str, pos: int, length: int) -> str:
    if pos == 0:
        return ""
    start = _start(text, pos)
    if length < 0:
        message = f"SUBSTRING: the length must not be negative ({length})"
        raise FunctionFailure(ErrorKind.FUNCTION_EVALUATION, message, "")
    return text[start : start + length]


def _abs(number: int) -> int:
    if number == INT_MIN:
        message = "ABS(-2147483648) overflows the 32-bit range"
        raise FunctionFailure(ErrorKind.MATH, message, INT_MAX)
    return abs(number)


BUILTINS: tuple[Overload, ...] = (
    Overload("LENGTH", (STR,), None, INT, len),  # code points: the characters of a str
    Overload("CONCAT", (), STR, STR, _concat),
    Overload("CONCAT_WS", (STR,), STR, STR, _concat_ws),
    Overload("LOWER", (STR,), None, STR, str.lower),
    Overload("UPPER", (STR,), None, STR, str.upper),
    Overload("TRIM", (STR,), None, STR, _trim),
    Overload("LEFT", (STR, INT), None, STR, _left),
    Overload("RIGHT", (STR, INT), None, STR, _right),
    Overload("SUBSTRING", (STR, INT), None, STR, _substring),
    Overload("SUBSTRING", (STR, INT, INT), None, STR, _substring_length),
    Overload("ABS", (INT,), None, INT, _abs),
    # Casting functions: spec 3.7 refers to "the same semantics of INT"; the TCK uses all three.
    Overload("INT", (INT,), None, INT, _identity, cast_only=True),
    Overload("BOOL", (BOOL,), None, BOOL, _identity, cast_only=True),
    Overload("STRING", (STR,), None, STR, _identity, cast_only=True),
)


def _user(function: Function) -> Overload:
    name, returns, implementation = function.name.upper(), function.returns, function.implementation
    expected, zero = PYTHON_TYPE[returns], ZERO[returns]

    def invoke(*arguments: Value) -> Value:
        # Spec 3.5.3: a user function that fails, or returns no valid value, yields the zero
        # value of its return type and a FunctionEvaluationError.
        try:
            value = implementation(*arguments)
        except Exception as exc:
            message = f"{name}: {type(exc).__name__}: {exc}"
            raise FunctionFailure(ErrorKind.FUNCTION_EVALUATION, message, zero) from None
        if value.__class__ is not expected:
            message = f"{name} returned {type(value).__name__}, not {returns.value}"
            raise FunctionFailure(ErrorKind.FUNCTION_EVALUATION, message, zero)
        return value

    return Overload(name, function.parameters, function.variadic, returns, invoke, pure=False)


class Functions:
    """The functions an expression may call: the built-ins plus user-defined ones, checked
    against the overload rules of spec 3.5 (raises ValueError on a set the engine MUST reject).
    """

    def __init__(self, user: Iterable[Function] = ()) -> None:
        table: dict[str, list[Overload]] = {}
        for overload in (*BUILTINS, *(_user(_checked(f)) for f in user)):
            table.setdefault(overload.name, []).append(overload)
        for name, overloads in table.items():
            _check_overloads(name, overloads)
        self._table: Mapping[str, tuple[Overload, ...]] = {
            name: tuple(overloads) for name, overloads in table.items()
        }

    def resolve(self, name: str, arity: int) -> Overload | None:
        """The overload a call of `name` with `arity` arguments dispatches to, if any."""
        variadic = None
        for overload in self._table.get(name.upper(), ()):
            if overload.variadic is None:
                if len(overload.parameters) == arity:
                    return overload
            elif arity >= len(overload.parameters):
                variadic = overload
        return variadic


def _checked(function: Function) -> Function:
    if not _NAME.fullmatch(function.name):
        raise ValueError(f"invalid function name {function.name!r} (spec 2.4)")
    types = (*function.parameters, function.returns, function.variadic or function.returns)
    if not all(isinstance(t, Type) for t in types):
        raise ValueError(f"{function.name}: parameter and return types must be cesql Types")
    return function


def _check_overloads(name: str, overloads: list[Overload]) -> None:
    # Spec 3.5: one definition per arity; at most one variadic overload, and only when its
    # fixed arguments outnumber every other overload's arity.
    fixed = [len(o.parameters) for o in overloads if o.variadic is None]
    if len(set(fixed)) != len(fixed):
        raise ValueError(f"function {name} is defined twice with the same arity")
    variadic = [o for o in overloads if o.variadic is not None]
    if len(variadic) > 1:
        raise ValueError(f"function {name} has more than one variadic overload")
    if variadic and fixed and len(variadic[0].parameters) <= max(fixed):
        raise ValueError(
            f"the variadic overload of {name} must have more fixed parameters than the "
            f"arity of every other overload ({max(fixed)})"
        )
