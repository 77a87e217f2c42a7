"""Generates, once per expression, the Python source of the fail-fast `matches` function
(spec 1.2): straight-line code over local variables instead of nested closures.

Attribute reads and casts are written inline (a String read as Integer is looked up in
`runtime.INTEGERS`, which remembers spec 3.7's parse), AND and OR become `and`, `or` or `if`
blocks that short-circuit as spec 3.4.2 requires, and wherever the closure compiler would
report an error the generated code returns False at once. The closures (`compiler`) stay the
reference for `evaluate`; rare cases call `runtime`, which shares their cast code.

The source holds only what this module writes: names it chooses, operators, and literals made
by `repr()` of values the parser produced (strings, integers, booleans). Patterns, functions and
tables are bound as names in the function's namespace, which has no builtins beyond a handful.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from gateway.routing.cesql import runtime
from gateway.routing.cesql.casting import cast as cast_value
from gateway.routing.cesql.compiler import Compiler
from gateway.routing.cesql.functions import Functions, Overload
from gateway.routing.cesql.nodes import Binary, Call, Exists, Identifier, In, Like, Node, Unary
from gateway.routing.cesql.parser import children
from gateway.routing.cesql.patterns import compile_pattern, shape
from gateway.routing.cesql.templates import (
    BOOL,
    CASTS,
    FAIL,
    FAILING_CASTS,
    INT,
    NAMESPACE,
    READS,
    STR,
    inline,
    is_builtin,
    literal,
    set_display,
)
from gateway.routing.cesql.values import INT_MAX, INT_MIN, PYTHON_TYPE, ZERO, Type, Value, type_of

Matcher = Callable[[Mapping[str, object]], bool]

_MAX_INDENT = 80  # Python's tokenizer allows 100 levels; deeper trees keep the closures
_ORDER = frozenset({"<", "<=", ">", ">="})


class TooDeep(Exception):
    """The generated code would nest deeper than Python's parser allows."""


@dataclass(frozen=True, slots=True)
class Operand:
    """A generated value: `code` is a Python expression that can neither fail nor have side
    effects, valid once the statements emitted before it ran. An attribute (`type` None) is
    read only by its consumer, which knows the type it wants."""

    code: str
    type: Type | None
    attribute: str | None = None
    constant: bool = False
    value: Value = False


def generate(tree: Node, functions: Functions) -> Matcher | None:
    """The `matches` function of `tree`; None when it cannot be generated."""
    try:
        source, namespace = Generator(functions, tree).source()
        exec(source, namespace)
    except (TooDeep, RecursionError, SyntaxError, MemoryError):
        return None
    return cast(Matcher, namespace["match"])


def fold_constants(tree: Node, functions: Functions) -> dict[int, Value]:
    """The value of every sub-tree that is fixed and evaluates without error, by node id,
    as the closure compiler folds it."""
    compiler, found = Compiler(functions), {}

    def visit(node: Node) -> bool:
        fixed = [visit(child) for child in children(node)]
        if isinstance(node, Identifier) or not all(fixed):
            return False
        code = compiler.compile(node)
        if code.constant:
            found[id(node)] = code.value
        return code.constant

    visit(tree)
    return found


class Generator:
    """Writes the source of one `match(attrs)` function for one tree."""

    def __init__(self, functions: Functions, tree: Node) -> None:
        self.functions = functions
        self.tree = tree
        self.constants = fold_constants(tree, functions)
        self.namespace = dict(NAMESPACE)
        self.lines: list[str] = []
        self.indent = 1
        self.scopes: list[dict[tuple[str, Type | None], str]] = [{}]
        self.count = 0

    def source(self) -> tuple[str, dict[str, object]]:
        final = self.check(self.tree, as_boolean=False)
        self.emit(f"return {final}")
        return "\n".join(["def match(attrs):", *self.lines, ""]), self.namespace

    # -- machinery --------------------------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def local(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def bind(self, value: object) -> str:
        """A name for `value` in the function's namespace."""
        self.count += 1
        name = f"_k{self.count}"
        self.namespace[name] = value
        return name

    def named(self, code: str) -> str:
        """`code` in a local, when it is used more than once."""
        if code.isidentifier():
            return code
        name = self.local()
        self.emit(f"{name} = {code}")
        return name

    @contextmanager
    def block(self) -> Iterator[list[str]]:
        """Collects the statements emitted inside, one level deeper; what they read stays
        cached there only."""
        saved = self.lines
        self.lines = []
        self.indent += 1
        if self.indent > _MAX_INDENT:
            raise TooDeep
        self.scopes.append({})
        try:
            yield self.lines
        finally:
            self.lines = saved
            self.indent -= 1
            self.scopes.pop()

    def read(self, name: str, target: Type | None) -> str:
        """A local holding attribute `name` as `target` (None: as CESQL sees it, spec 3.2);
        a read already done on every path here is reused."""
        key = (name, target)
        for scope in reversed(self.scopes):
            if key in scope:
                return scope[key]
        v = self.local()
        self.emit(f"{v} = attrs.get({name!r})")
        for line in READS[target]:
            self.emit(line.format(v=v))
        self.scopes[-1][key] = v
        return v

    def convert(self, operand: Operand, target: Type) -> str:
        """`operand` cast to `target` (spec 3.7); a failed cast returns False."""
        if operand.attribute is not None:
            return self.read(operand.attribute, target)
        source = operand.type
        if source is target:
            return operand.code
        assert source is not None  # only attributes have no static type
        if operand.constant:
            value = cast_value(operand.value, target, runtime.ignore)
            if value is None:
                self.emit(FAIL)
                return literal(ZERO[target])
            return literal(value)
        if (source, target) in CASTS:
            return CASTS[source, target].format(operand.code)
        v = self.local()
        self.emit(f"{v} = {FAILING_CASTS[source, target]}({operand.code})")
        self.emit(f"if {v} is None: {FAIL}")
        return v

    def dynamic(self, operand: Operand) -> str:
        """`operand` as it is, an attribute as CESQL sees it (spec 3.2)."""
        if operand.attribute is not None:
            return self.read(operand.attribute, None)
        return operand.code

    # -- the filter ---------------------------------------------------------------------------

    def check(self, node: Node, as_boolean: bool) -> str:
        """A condition true when `node` is Boolean true (after a cast to Boolean, for an AND
        operand); the statements before it return False on the first error."""
        if isinstance(node, Binary) and node.operator == "AND" and id(node) not in self.constants:
            # Spec 3.4.2: the right operand is evaluated only when the left one is true.
            first = self.check(node.left, as_boolean=True)
            if first != "True":
                self.emit(f"if not {first}: {FAIL}")
            return self.check(node.right, as_boolean=True)
        operand = self.value(node)
        if as_boolean:
            return self.convert(operand, BOOL)
        if operand.attribute is not None:
            return f"(attrs.get({operand.attribute!r}) is True)"
        return operand.code if operand.type is BOOL else "False"

    # -- values -------------------------------------------------------------------------------

    def value(self, node: Node) -> Operand:
        if id(node) in self.constants:
            value = self.constants[id(node)]
            return Operand(literal(value), type_of(value), constant=True, value=value)
        if isinstance(node, Identifier):
            return Operand("", None, node.name)
        if isinstance(node, Exists):
            return Operand(f"(attrs.get({node.name!r}) is not None)", BOOL)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, In):
            return self.membership(node)
        if isinstance(node, Call):
            return self.call(node)
        raise AssertionError(f"unexpected node {node!r}")  # literals are all constants

    def static_type(self, node: Node) -> Type | None:
        """The type of `node` known before evaluation, as the closure compiler settles it."""
        if id(node) in self.constants:
            return type_of(self.constants[id(node)])
        if isinstance(node, Identifier):
            return None
        if isinstance(node, Unary):
            return BOOL if node.operator == "NOT" else INT
        if isinstance(node, Binary):
            return INT if node.operator in ("+", "-", "*", "/", "%") else BOOL
        if isinstance(node, Call):
            overload = self.functions.resolve(node.name, len(node.arguments))
            return BOOL if overload is None else overload.returns
        return BOOL

    def unary(self, node: Unary) -> Operand:
        # Spec 3.4.1.
        if node.operator == "NOT":
            return Operand(f"(not {self.convert(self.value(node.operand), BOOL)})", BOOL)
        x = self.named(self.convert(self.value(node.operand), INT))
        self.emit(f"if {x} == {INT_MIN}: {FAIL}")  # overflow, a MathError
        return Operand(f"(-{x})", INT)

    def binary(self, node: Binary) -> Operand:
        symbol = node.operator
        if symbol in ("AND", "OR"):
            return self.logic(node)
        if symbol in ("=", "!=", "<>"):
            return self.equality(node, negated=symbol != "=")
        target = BOOL if symbol == "XOR" else INT
        x = self.convert(self.value(node.left), target)
        if symbol in ("/", "%"):
            return self.division(x, node)
        y = self.convert(self.value(node.right), target)
        if symbol == "XOR":
            return Operand(f"({x} is not {y})", BOOL)
        if symbol in _ORDER:
            return Operand(f"({x} {symbol} {y})", BOOL)
        v = self.local()
        self.emit(f"{v} = {x} {symbol} {y}")
        # The spec leaves overflow open; it is a MathError here (see `operators`).
        self.emit(f"if not {INT_MIN} <= {v} <= {INT_MAX}: {FAIL}")
        return Operand(v, INT)

    def logic(self, node: Binary) -> Operand:
        """AND and OR, short-circuiting (spec 3.4.2): the right operand inline when it needs
        no statements, else in an `if` block."""
        conjunction = node.operator == "AND"
        x = self.convert(self.value(node.left), BOOL)
        v = self.local()
        with self.block() as inner:
            y = self.convert(self.value(node.right), BOOL)
            pure = not inner
            if not pure:
                self.emit(f"{v} = {y}")
        if pure:
            return Operand(f"({x} {'and' if conjunction else 'or'} {y})", BOOL)
        self.emit(f"if {x}:" if conjunction else f"if not {x}:")
        self.lines.extend(inner)
        self.emit("else:")
        self.emit(f"    {v} = {conjunction is False}")
        return Operand(v, BOOL)

    def equality(self, node: Binary, negated: bool) -> Operand:
        # Spec 3.7: the right operand's type picks the overload; the left one is cast to it.
        target = self.static_type(node.right)
        if target is not None:
            x = self.convert(self.value(node.left), target)
            y = self.value(node.right).code
            return Operand(f"({x} {'!=' if negated else '=='} {y})", BOOL)
        x = self.named(self.dynamic(self.value(node.left)))
        y = self.dynamic(self.value(node.right))
        v = self.local()
        self.emit(f"{v} = ({x} == {y}) if {x}.__class__ is {y}.__class__ else _equal({x}, {y})")
        self.emit(f"if {v} is None: {FAIL}")
        return Operand(f"(not {v})" if negated else v, BOOL)

    def division(self, x: str, node: Binary) -> Operand:
        """`/` and `%`, truncating (spec 3.4.2); a zero divisor is a MathError."""
        divisor = self.value(node.right)
        constant = cast_value(divisor.value, INT, runtime.ignore) if divisor.constant else None
        if not isinstance(constant, int) or constant == 0:
            y = self.convert(divisor, INT)
            v = self.local()
            self.emit(f"{v} = {'_modulo' if node.operator == '%' else '_divide'}({x}, {y})")
            self.emit(f"if {v} is None: {FAIL}")
            return Operand(v, INT)
        x, c = self.named(x), abs(constant)
        if node.operator == "%":
            return Operand(f"({x} % {c} if {x} >= 0 else -(-{x} % {c}))", INT)
        if constant > 0:
            return Operand(f"({x} // {c} if {x} >= 0 else -(-{x} // {c}))", INT)
        if constant == -1:
            self.emit(f"if {x} == {INT_MIN}: {FAIL}")  # the quotient overflows
        return Operand(f"(-({x} // {c}) if {x} >= 0 else -{x} // {c})", INT)

    def like(self, node: Like) -> Operand:
        # Spec 3.4.3; the simple patterns as string methods, the others as a predicate.
        x = self.convert(self.value(node.operand), STR)
        simple = shape(node.pattern)
        if simple is None:
            test = f"{self.bind(compile_pattern(node.pattern))}({x})"
        else:
            kind, text = simple
            test = {
                "exact": f"({x} == {text!r})",
                "prefix": f"{x}.startswith({text!r})",
                "suffix": f"{x}.endswith({text!r})",
                "contains": f"({text!r} in {x})",
            }[kind]
        return Operand(f"(not {test})" if node.negated else test, BOOL)

    def membership(self, node: In) -> Operand:
        # Spec 3.4.5: `=` semantics, each element cast to the type of the operand.
        operand = self.value(node.operand)
        if not all(id(element) in self.constants for element in node.elements):
            x = self.named(self.dynamic(operand))
            ys = [self.dynamic(self.value(element)) for element in node.elements]
            v = self.local()
            self.emit(f"{v} = _member({x}, ({', '.join(ys)},))")
            self.emit(f"if {v} is None: {FAIL}")
            return Operand(f"(not {v})" if node.negated else v, BOOL)
        tables = runtime.tables([self.constants[id(element)] for element in node.elements])
        test = "not in" if node.negated else "in"
        if operand.attribute is None:
            assert operand.type is not None
            members = tables[PYTHON_TYPE[operand.type]]
            if members is None:
                self.emit(FAIL)  # an element does not cast to the operand's type
                return Operand("False", BOOL)
            return Operand(f"({operand.code} {test} {set_display(members)})", BOOL)
        x = self.local()
        self.emit(f"{x} = attrs.get({operand.attribute!r})")
        v = self.local()
        strings = set_display(cast(frozenset[Value], tables[str]))
        self.emit(
            f"{v} = ({x} in {strings}) if {x}.__class__ is str else "
            f"_lookup({x}, {self.bind(tables)})"
        )
        self.emit(f"if {v} is None: {FAIL}")
        return Operand(f"(not {v})" if node.negated else v, BOOL)

    def call(self, node: Call) -> Operand:
        # Spec 3.5: a call that cannot be dispatched is a MissingFunctionError.
        overload = self.functions.resolve(node.name, len(node.arguments))
        if overload is None:
            self.emit(FAIL)
            return Operand("False", BOOL)
        if overload.cast_only:
            only = self.value(node.arguments[0])
            return Operand(self.convert(only, overload.returns), overload.returns)
        arguments = [
            self.convert(self.value(argument), overload.parameter(i))
            for i, argument in enumerate(node.arguments)
        ]
        return self.invoke(overload, arguments)

    def invoke(self, overload: Overload, arguments: list[str]) -> Operand:
        """A dispatched call: the built-ins that cannot fail inline, others through their
        implementation; a function error returns False (spec 3.5.3)."""
        template = inline(overload)
        if template is not None:
            return Operand(template(arguments), overload.returns)
        if overload.name == "ABS" and is_builtin(overload):
            x = self.named(arguments[0])
            self.emit(f"if {x} == {INT_MIN}: {FAIL}")  # spec 3.5.2: overflow, a MathError
            return Operand(f"abs({x})", INT)
        v = self.local()
        self.emit("try:")
        self.emit(f"    {v} = {self.bind(overload.invoke)}({', '.join(arguments)})")
        self.emit("except _Failure:")
        self.emit(f"    {FAIL}")
        return Operand(v, overload.returns)
