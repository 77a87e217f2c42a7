"""The syntax tree of a CESQL expression (spec 2): what the parser builds and the compiler reads.

Every node records `offset`, where it starts in the source, for messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.routing.cesql.values import Value


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value
    offset: int


@dataclass(frozen=True, slots=True)
class Identifier:
    """A context attribute or extension, by its lower-case name (spec 2.2, 3.2)."""

    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class Unary:
    """`NOT x` or `-x` (spec 3.4.1)."""

    operator: str
    operand: Node
    offset: int


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, comparison and logic operators (spec 3.4.2)."""

    operator: str
    left: Node
    right: Node
    offset: int


@dataclass(frozen=True, slots=True)
class Like:
    """`x [NOT] LIKE 'pattern'`; the pattern is always a literal (spec 3.4.3)."""

    operand: Node
    pattern: str
    negated: bool
    offset: int


@dataclass(frozen=True, slots=True)
class Exists:
    """`EXISTS identifier` (spec 3.4.4)."""

    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class In:
    """`x [NOT] IN (y1, ...)` with at least one element (spec 3.4.5)."""

    operand: Node
    elements: tuple[Node, ...]
    negated: bool
    offset: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function invocation; `name` is upper-cased (function names are case-insensitive)."""

    name: str
    arguments: tuple[Node, ...]
    offset: int


Node = Literal | Identifier | Unary | Binary | Like | Exists | In | Call
