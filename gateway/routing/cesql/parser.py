"""A hand-written precedence-climbing parser for CESQL v1 (spec 2, precedence spec 3.6).

Binding, tightest first: function calls; prefix NOT and `-` (they take only a unary chain or an
atom: `NOT a = b` is `(NOT a) = b`); LIKE; EXISTS (an atom); IN; `* / %`; `+ -`; comparisons;
AND / OR / XOR on one level. Operators of equal precedence group left to right (spec 3.6: "left
to right when the precedence is equal"; the informative CESQLParser.g4 makes the logic level
right-associative instead, so mixing AND/OR/XOR without parentheses draws a warning).
"""

from __future__ import annotations

import re

from gateway.routing.cesql.errors import CesqlParseError
from gateway.routing.cesql.lexer import Kind, Token, fail, tokenize
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
from gateway.routing.cesql.values import INT_MAX, INT_MIN

MAX_DEPTH = 64
_LOGIC, _COMPARE, _ADD, _MUL, _IN, _LIKE = 10, 20, 30, 40, 50, 60
_BINARY = {
    "*": _MUL, "/": _MUL, "%": _MUL,
    "+": _ADD, "-": _ADD,
    "=": _COMPARE, "!=": _COMPARE, "<>": _COMPARE,
    "<": _COMPARE, "<=": _COMPARE, ">": _COMPARE, ">=": _COMPARE,
}  # fmt: skip
_LOGIC_WORDS = frozenset({"AND", "OR", "XOR"})
_IDENTIFIER = re.compile(r"[A-Za-z0-9]+")  # spec 2.2 value-identifier (upper case folded)
_FUNCTION = re.compile(r"[A-Za-z][A-Za-z_]*")  # spec 2.4 function-identifier
IDENTIFIER_LENGTH = 20  # spec 2.2: SHOULD NOT be longer


class Parser:
    """Parses one expression; `warnings` collects legal but doubtful constructs."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.warnings: list[str] = []

    def parse(self) -> Node:
        if self.peek().kind is Kind.END:
            raise self.error(self.peek(), "empty expression")
        node = self.expression(0, 0)
        token = self.peek()
        if token.kind is not Kind.END:
            raise self.error(token, f"unexpected {token.text!r}")
        return node

    # -- machinery --------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def error(self, token: Token, message: str) -> CesqlParseError:
        if token.kind is Kind.END and message.startswith("unexpected"):
            message = "unexpected end of expression"
        return fail(self.source, token.offset, message)

    def expect(self, symbol: str) -> Token:
        token = self.peek()
        if token.kind is not Kind.SYMBOL or token.value != symbol:
            found = "end of expression" if token.kind is Kind.END else repr(token.text)
            raise self.error(token, f"expected {symbol!r}, found {found}")
        return self.advance()

    def deeper(self, depth: int, token: Token) -> int:
        if depth >= MAX_DEPTH:
            raise self.error(token, f"expression nested too deeply (over {MAX_DEPTH} levels)")
        return depth + 1

    # -- grammar ----------------------------------------------------------------------------

    def expression(self, min_power: int, depth: int) -> Node:
        """An expression whose operators all bind tighter than `min_power`; `depth` counts the
        parser's own nesting (parentheses, prefix operators, argument lists)."""
        bare_not = self.peek().kind is Kind.KEYWORD and self.peek().value == "NOT"
        left = self.unary(depth)
        logic_seen: set[str] = set()
        while True:
            token = self.peek()
            power = self.infix_power(token)
            if power <= min_power:
                return left
            if bare_not and power != _LOGIC:
                self.warnings.append(
                    "NOT binds tighter than every other operator: 'NOT a = b' means "
                    "'(NOT a) = b'; write 'NOT (a = b)' to negate a comparison"
                )
            bare_not = False
            if power == _LOGIC:
                logic_seen.add(token.value)
                if len(logic_seen) == 2:
                    self.warnings.append(
                        "AND, OR and XOR share one precedence level and group left to right: "
                        "'a OR b AND c' means '(a OR b) AND c'; add parentheses"
                    )
            left = self.infix(left, token, power, depth)

    def infix_power(self, token: Token) -> int:
        if token.kind is Kind.SYMBOL:
            return _BINARY.get(token.value, 0)
        if token.kind is not Kind.KEYWORD:
            return 0
        word = token.value
        if word in _LOGIC_WORDS:
            return _LOGIC
        if word == "NOT":
            word = self.peek(1).value if self.peek(1).kind is Kind.KEYWORD else ""
            if word not in ("LIKE", "IN"):
                raise self.error(self.peek(1), "expected LIKE or IN after NOT")
        if word == "LIKE":
            return _LIKE
        return _IN if word == "IN" else 0

    def infix(self, left: Node, token: Token, power: int, depth: int) -> Node:
        self.advance()
        negated = token.value == "NOT"
        if negated:
            self.advance()
        if power == _LIKE:
            return self.like(left, negated, token)
        if power == _IN:
            return self.in_set(left, negated, token, depth)
        operator = token.value
        right = self.expression(power, self.deeper(depth, token))
        return Binary(operator, left, right, token.offset)

    def like(self, operand: Node, negated: bool, token: Token) -> Like:
        pattern = self.peek()
        if pattern.kind is not Kind.STRING:
            # Spec 3.4.3: the pattern MUST be a string literal, else a parse error.
            raise self.error(pattern, "the pattern of LIKE must be a string literal")
        self.advance()
        return Like(operand, pattern.value, negated, token.offset)

    def in_set(self, operand: Node, negated: bool, token: Token, depth: int) -> In:
        self.expect("(")
        elements = self.list_items(depth)
        if not elements:
            # Spec 3.4.5: n > 0.
            raise self.error(self.peek(), "the set of IN must not be empty")
        self.expect(")")
        return In(operand, tuple(elements), negated, token.offset)

    def list_items(self, depth: int) -> list[Node]:
        """Comma-separated expressions up to (not including) a closing parenthesis."""
        items: list[Node] = []
        token = self.peek()
        if token.kind is Kind.SYMBOL and token.value == ")":
            return items
        inner = self.deeper(depth, token)
        while True:
            items.append(self.expression(0, inner))
            token = self.peek()
            if token.kind is not Kind.SYMBOL or token.value != ",":
                return items
            self.advance()

    def unary(self, depth: int) -> Node:
        token = self.peek()
        if token.kind is Kind.KEYWORD and token.value == "NOT":
            self.advance()
            operand = self.unary(self.deeper(depth, token))
            return Unary("NOT", operand, token.offset)
        if token.kind is Kind.SYMBOL and token.value in ("-", "+"):
            self.advance()
            if self.peek().kind is Kind.INTEGER:
                # Spec 2.2 integer-literal: ('+' | '-')? digit+, a valid 32-bit value.
                return self.integer(self.advance(), token)
            if token.value == "+":
                raise self.error(self.peek(), "'+' must be followed by an integer literal")
            operand = self.unary(self.deeper(depth, token))
            return Unary("-", operand, token.offset)
        return self.primary(depth)

    def integer(self, digits: Token, sign: Token | None = None) -> Literal:
        text = digits.value.lstrip("0") or "0"
        number = int(text) if len(text) <= 10 else INT_MAX + 1
        if sign is not None and sign.value == "-":
            number = -number
        if not INT_MIN <= number <= INT_MAX:
            raise self.error(sign or digits, "integer literal out of the 32-bit range")
        return Literal(number, (sign or digits).offset)

    def primary(self, depth: int) -> Node:
        token = self.advance()
        kind, value = token.kind, token.value
        if kind is Kind.INTEGER:
            return self.integer(token)
        if kind is Kind.STRING:
            return Literal(value, token.offset)
        if kind is Kind.KEYWORD and value in ("TRUE", "FALSE"):
            return Literal(value == "TRUE", token.offset)
        if kind is Kind.KEYWORD and value == "EXISTS":
            return Exists(self.identifier_name(self.advance(), "EXISTS"), token.offset)
        if kind is Kind.NAME:
            after = self.peek()
            if after.kind is Kind.SYMBOL and after.value == "(":
                return self.call(token, depth)
            return Identifier(self.identifier_name(token, None), token.offset)
        if kind is Kind.SYMBOL and value == "(":
            node = self.expression(0, self.deeper(depth, token))
            self.expect(")")
            return node
        raise self.error(token, f"unexpected {token.text!r}")

    def identifier_name(self, token: Token, after: str | None) -> str:
        valid = token.kind in (Kind.NAME, Kind.INTEGER) and _IDENTIFIER.fullmatch(token.value)
        if not valid:
            where = f" after {after}" if after else ""
            if token.kind is Kind.END:
                raise self.error(token, f"expected an attribute name{where}")
            raise self.error(
                token, f"{token.text!r} is not an attribute name{where} (letters and digits)"
            )
        name = token.value.lower()
        if len(name) > IDENTIFIER_LENGTH:
            self.warnings.append(
                f"attribute name '{name}' is longer than {IDENTIFIER_LENGTH} characters"
            )
        return name

    def call(self, name: Token, depth: int) -> Call:
        if not _FUNCTION.fullmatch(name.value):
            raise self.error(name, f"{name.text!r} is not a function name")
        self.expect("(")
        arguments = self.list_items(depth)
        self.expect(")")
        return Call(name.value.upper(), tuple(arguments), name.offset)


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary | Like):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, In):
        return (node.operand, *node.elements)
    if isinstance(node, Call):
        return node.arguments
    return ()


def tree_depth(root: Node) -> int:
    """The depth of a tree, measured without recursion (left-deep chains can be long)."""
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(node))
    return deepest


def parse(source: str) -> tuple[Node, tuple[str, ...]]:
    """The syntax tree of `source` and the parser's warnings; raises CesqlParseError.

    The tree's depth is bounded so that compiling and evaluating it stay within Python's
    recursion limit.
    """
    parser = Parser(source)
    try:
        node = parser.parse()
    except RecursionError:
        # Only when called from an already deep stack: the depth guard normally comes first.
        raise fail(source, 0, "expression nested too deeply") from None
    if tree_depth(node) > MAX_DEPTH:
        raise fail(source, 0, f"expression nested too deeply (over {MAX_DEPTH} levels)")
    return node, tuple(dict.fromkeys(parser.warnings))
