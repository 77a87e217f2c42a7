"""The code fragments `codegen` writes: attribute reads, casts, inline built-in calls, literals,
and the namespace generated functions run in.

Every fragment is fixed text with slots for names and literals the generator makes; none holds
text taken from an expression.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.routing.cesql import runtime
from gateway.routing.cesql.functions import BUILTINS, WHITESPACE, FunctionFailure, Overload
from gateway.routing.cesql.values import Type, Value

BOOL, INT, STR = Type.BOOLEAN, Type.INTEGER, Type.STRING
FAIL = "return False"

# No builtins beyond those the fragments call.
NAMESPACE: dict[str, object] = {
    "__builtins__": {},
    "len": len,
    "str": str,
    "bool": bool,
    "abs": abs,
    "_attribute": runtime.attribute,
    "_as_string": runtime.as_string,
    "_as_integer": runtime.as_integer,
    "_INTEGERS": runtime.INTEGERS,
    "_as_boolean": runtime.as_boolean,
    "_string_integer": runtime.string_integer,
    "_string_boolean": runtime.string_boolean,
    "_equal": runtime.equal,
    "_member": runtime.member,
    "_lookup": runtime.lookup,
    "_divide": runtime.divide,
    "_modulo": runtime.modulo,
    "_Failure": FunctionFailure,
    "_WHITESPACE": WHITESPACE,
}

# An attribute read as each type (None: as CESQL sees it, spec 3.2): `{v}` holds
# `attrs.get(name)` and then the value, or the function has returned False (a missing
# attribute or a failed cast, spec 3.2, 3.7).
READS: dict[Type | None, tuple[str, ...]] = {
    STR: (
        "if {v}.__class__ is not str:",
        "    {v} = _as_string({v})",
        "    if {v} is None: return False",
    ),
    INT: (
        "{v} = _INTEGERS[{v}] if {v}.__class__ is str else _as_integer({v})",
        "if {v} is None: return False",
    ),
    BOOL: (
        "if {v}.__class__ is not bool:",
        "    {v} = _as_boolean({v})",
        "    if {v} is None: return False",
    ),
    None: (
        "if {v}.__class__ is not str and {v}.__class__ is not bool:",
        "    {v} = _attribute({v})",
        "    if {v} is None: return False",
    ),
}

# Spec 3.7: the casts between static types that cannot fail, as expressions ...
CASTS: dict[tuple[Type, Type], str] = {
    (BOOL, STR): "('true' if {} else 'false')",
    (INT, STR): "str({})",
    (BOOL, INT): "(1 if {} else 0)",
    (INT, BOOL): "({} != 0)",
}
# ... and the helpers for those that can (None on failure).
FAILING_CASTS: dict[tuple[Type, Type], str] = {
    (STR, INT): "_string_integer",
    (STR, BOOL): "_string_boolean",
}


def _join(arguments: list[str], separator: str = "''") -> str:
    return f"{separator}.join(({''.join(a + ', ' for a in arguments)}))"


# Built-ins that cannot fail, as expressions over their (already cast) arguments (spec 3.5.1).
_INLINE: dict[str, Callable[[list[str]], str]] = {
    "LENGTH": lambda a: f"len({a[0]})",
    "LOWER": lambda a: f"{a[0]}.lower()",
    "UPPER": lambda a: f"{a[0]}.upper()",
    "TRIM": lambda a: f"{a[0]}.strip(_WHITESPACE)",
    "CONCAT": _join,
    "CONCAT_WS": lambda a: _join(a[1:], a[0]),
}


def is_builtin(overload: Overload) -> bool:
    return any(overload is builtin for builtin in BUILTINS)


def inline(overload: Overload) -> Callable[[list[str]], str] | None:
    """The expression template of a built-in that cannot fail; None for any other function."""
    return _INLINE.get(overload.name) if is_builtin(overload) else None


def literal(value: Value) -> str:
    """Python source for a CESQL value."""
    if type(value) is int and value < 0:
        return f"({value})"
    return repr(value)


def set_display(members: frozenset[Value]) -> str:
    """A set display of literals (which Python folds into a constant for `in`)."""
    if not members:
        return "()"
    return "{" + ", ".join(sorted(literal(member) for member in members)) + "}"
