"""Turns a CESQL syntax tree into nested Python closures, once per expression.

Each closure takes the event's attributes and a `report` callback and returns a value; types are
settled at compile time wherever the tree allows, so evaluation does no dispatch on node kinds.
An attribute the event lacks yields None from its identifier closure (after reporting a
MissingAttributeError) and the operator or function consuming it returns the zero value of its
own return type (spec 3.2). Sub-trees whose value is fixed and error-free are folded.
"""

from __future__ import annotations

from typing import Any

from gateway.routing.cesql import operators
from gateway.routing.cesql.casting import Report
from gateway.routing.cesql.compiled import (
    Attributes,
    Code,
    Fn,
    as_type,
    constant,
    fold,
    missing_attribute,
)
from gateway.routing.cesql.errors import ErrorKind
from gateway.routing.cesql.functions import Functions
from gateway.routing.cesql.nodes import (
    Binary,
    Call,
    Exists,
    Identifier,
    In,
    Like,
    Literal,
    Node,
    Unary,
)
from gateway.routing.cesql.values import Type, attribute_value

# CE core: REQUIRED attributes; `EXISTS` MUST be true for them (spec 3.4.4).
REQUIRED = frozenset({"id", "source", "specversion", "type"})


class Compiler:
    """Compiles trees against one set of functions; `unknown` lists calls that cannot be
    dispatched (they evaluate to false with a MissingFunctionError)."""

    def __init__(self, functions: Functions) -> None:
        self.functions = functions
        self.unknown: list[str] = []

    def compile(self, node: Node, keep: bool = False) -> Code:
        """`keep` for the root: its own error still yields its own value (see `operators`)."""
        if isinstance(node, Literal):
            return constant(node.value)
        if isinstance(node, Identifier):
            return Code(_identifier(node.name), None, attribute=node.name)
        if isinstance(node, Exists):
            if node.name in REQUIRED:
                return constant(True)
            name = node.name
            return Code(lambda a, r: a.get(name) is not None, Type.BOOLEAN)
        if isinstance(node, Unary):
            operand = self.compile(node.operand)
            if node.operator == "NOT":
                return fold(operators.negation(operand), operand)
            return fold(operators.minus(operand, keep), operand)
        if isinstance(node, Binary):
            left, right = self.compile(node.left), self.compile(node.right)
            return fold(operators.binary(node.operator, left, right, keep), left, right)
        if isinstance(node, Like):
            operand = self.compile(node.operand)
            return fold(operators.like(operand, node.pattern, node.negated), operand)
        if isinstance(node, In):
            operand = self.compile(node.operand)
            elements = [self.compile(element) for element in node.elements]
            code = operators.membership(operand, elements, node.negated)
            return fold(code, operand, *elements)
        return self.call(node, keep)

    def call(self, node: Call, keep: bool) -> Code:
        arguments = [self.compile(argument) for argument in node.arguments]
        overload = self.functions.resolve(node.name, len(arguments))
        if overload is None:
            # Spec 3.5: a call that cannot be dispatched is false with a MissingFunctionError.
            message = f"no function {node.name} taking {len(arguments)} argument(s)"
            self.unknown.append(message)

            def missing(attributes: Attributes, report: Report) -> None:
                report(ErrorKind.MISSING_FUNCTION, message)

            return Code(missing, Type.BOOLEAN)
        if overload.cast_only:
            only, returns = arguments[0], overload.returns
            code = Code(as_type(only, returns), returns, cast_of=only.attribute)
            return fold(code, only)
        casts = [as_type(a, overload.parameter(i)) for i, a in enumerate(arguments)]
        code = Code(operators.invocation(overload.invoke, casts, keep), overload.returns)
        return fold(code, *arguments) if overload.pure else code


def _identifier(name: str) -> Fn:
    message = missing_attribute(name)

    def attribute(attributes: Attributes, report: Report) -> Any:
        value = attributes.get(name)
        cls = value.__class__
        if cls is str or cls is bool:
            return value
        if value is None:
            report(ErrorKind.MISSING_ATTRIBUTE, message)
            return None
        return attribute_value(value)

    return attribute
