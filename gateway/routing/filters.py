"""Subscription filters (CloudEvents Subscriptions API 3.2.4) compiled once into small objects.

`compile_filter` turns one YAML/JSON filter (`{"prefix": {"type": "com.example."}}`) into a
`Filter`; `match` and `explain` apply a subscription's `types`, `source` and filters to an event.
Matching runs per event per subscription, so filters hold pre-checked tuples and do no parsing.
Beside the six required dialects: `sql` (CESQL v1, compiled once by `gateway.routing.cesql`) and
our `data` dialect (`gateway.routing.datafilter`).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gateway.event import Event, canonical
from gateway.routing.datafilter import DataFilter, DataFilterError

if TYPE_CHECKING:
    from gateway.routing.cesql import Expression

Parts = tuple[str | int, ...]

# CE core, Attribute Naming Convention: lower-case ASCII letters and digits.
_ATTRIBUTE = re.compile(r"[a-z0-9]+")
_ATTRIBUTE_DIALECTS = ("exact", "prefix", "suffix")
SUPPORTED = ("exact", "prefix", "suffix", "all", "any", "not", "sql", "data")


class Filter(Protocol):
    def match(self, event: Event) -> bool: ...

    def describe(self) -> str: ...

    def reason(self, event: Event) -> str | None:
        """None when the filter matches the event, else a short reason why not."""


class FilterError(Exception):
    """An invalid filter; `path` is the key path of the offending part, `parts` the same path
    relative to the filter given to `compile_filter` (for finding its line)."""

    def __init__(self, path: str, message: str, parts: Parts = ()) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
        self.parts = parts


class _Described:
    """Shows a compiled filter as its description."""

    __slots__ = ()

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<filter {self.describe()}>"


class _Attributes(_Described):
    """exact / prefix / suffix: every listed attribute is present and passes `test`."""

    __slots__ = ("_dialect", "_items", "_test", "_text")

    def __init__(
        self, dialect: str, items: tuple[tuple[str, str], ...], test: Callable[[str, str], bool]
    ) -> None:
        self._dialect = dialect
        self._items = items
        self._test = test
        self._text = dialect + "".join(f" {n}={json.dumps(v)}" for n, v in items)

    def match(self, event: Event) -> bool:
        attributes = event.attributes
        for name, wanted in self._items:
            value = attributes.get(name)
            # Knative: a missing attribute fails; other types compare by canonical string.
            if value is None or not self._test(
                value if value.__class__ is str else canonical(value), wanted
            ):
                return False
        return True

    def describe(self) -> str:
        return self._text

    def reason(self, event: Event) -> str | None:
        for name, wanted in self._items:
            value = event.attributes.get(name)
            if value is None:
                return f"{name} is missing"
            if not self._test(canonical(value), wanted):
                return f"{name} is {json.dumps(canonical(value))}"
        return None


class _All(_Described):
    __slots__ = ("_filters",)

    def __init__(self, filters: tuple[Filter, ...]) -> None:
        self._filters = filters

    def match(self, event: Event) -> bool:
        for f in self._filters:  # noqa: SIM110 -- a plain loop beats all() over a generator
            if not f.match(event):
                return False
        return True

    def describe(self) -> str:
        return f"all({', '.join(f.describe() for f in self._filters)})"

    def reason(self, event: Event) -> str | None:
        for i, f in enumerate(self._filters):
            why = f.reason(event)
            if why is not None:
                return f"all[{i}]: {why}"
        return None


class _Any(_Described):
    __slots__ = ("_filters",)

    def __init__(self, filters: tuple[Filter, ...]) -> None:
        self._filters = filters

    def match(self, event: Event) -> bool:
        for f in self._filters:  # noqa: SIM110 -- a plain loop beats any() over a generator
            if f.match(event):
                return True
        return False

    def describe(self) -> str:
        return f"any({', '.join(f.describe() for f in self._filters)})"

    def reason(self, event: Event) -> str | None:
        reasons = [f.reason(event) for f in self._filters]
        if any(why is None for why in reasons):
            return None
        return "none matched: " + "; ".join(f"any[{i}]: {w}" for i, w in enumerate(reasons))


class _Not(_Described):
    __slots__ = ("_filter",)

    def __init__(self, inner: Filter) -> None:
        self._filter = inner

    def match(self, event: Event) -> bool:
        return not self._filter.match(event)

    def describe(self) -> str:
        return f"not({self._filter.describe()})"

    def reason(self, event: Event) -> str | None:
        return f"{self._filter.describe()} matched" if self._filter.match(event) else None


class _Sql(_Described):
    """CESQL v1: passes only when the expression evaluates to Boolean true without error."""

    __slots__ = ("_expression",)

    def __init__(self, expression: Expression) -> None:
        self._expression = expression

    def match(self, event: Event) -> bool:
        return self._expression.matches(event.attributes)

    def describe(self) -> str:
        return f"sql {json.dumps(self._expression.source)}"

    def reason(self, event: Event) -> str | None:
        if self._expression.matches(event.attributes):
            return None
        return self._expression.explain(event.attributes)


class _Data(_Described):
    __slots__ = ("_filter",)

    def __init__(self, inner: DataFilter) -> None:
        self._filter = inner

    def match(self, event: Event) -> bool:
        return self._filter.match(event)

    def describe(self) -> str:
        return self._filter.describe()

    def reason(self, event: Event) -> str | None:
        return self._filter.reason(event)


_TESTS: dict[str, Callable[[str, str], bool]] = {
    "exact": operator.eq,
    "prefix": str.startswith,
    "suffix": str.endswith,
}


def compile_filter(spec: object, path: str) -> Filter:
    """Build a `Filter` from one filter object; raises FilterError naming the offending part."""
    return _compile(spec, path, ())


def _compile(spec: object, path: str, parts: Parts) -> Filter:
    dialect, body = _dialect(spec, path, parts)
    inner = (*parts, dialect)
    if dialect in _ATTRIBUTE_DIALECTS:
        return _Attributes(dialect, _attribute_items(body, path, inner), _TESTS[dialect])
    if dialect in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise _error(path, inner, f"'{dialect}' must be a non-empty list of filters")
        nested = tuple(_compile(item, path, (*inner, i)) for i, item in enumerate(body))
        return _All(nested) if dialect == "all" else _Any(nested)
    if dialect == "sql":
        return _Sql(_compile_sql(body, path, inner))
    if dialect == "data":
        try:
            return _Data(DataFilter(body, inner))
        except DataFilterError as exc:
            raise _error(path, exc.parts, exc.message) from None
    return _Not(_compile(body, path, inner))


def _compile_sql(body: object, path: str, parts: Parts) -> Expression:
    # Subscriptions API 3.2.4: invalid expressions SHOULD be rejected when the subscription is
    # created; here, when the config is loaded (and by `gateway check`).
    if not isinstance(body, str) or not body.strip():
        raise _error(path, parts, "'sql' must be a CESQL expression (a non-empty string)")
    from gateway.routing import cesql  # the CESQL compiler loads only for `sql` filters

    try:
        return cesql.compile(body)
    except cesql.CesqlParseError as exc:
        message = f"invalid CESQL at {exc.line}:{exc.column}: {exc.message}"
        raise _error(path, parts, message) from None


def _dialect(spec: object, path: str, parts: Parts) -> tuple[str, object]:
    if not isinstance(spec, dict) or not spec:
        raise _error(path, parts, f"a filter is a mapping with one dialect key ({_choices()})")
    if len(spec) > 1:
        keys = ", ".join(str(k) for k in spec)
        raise _error(path, parts, f"a filter has exactly one dialect key, found {keys}")
    ((dialect, body),) = spec.items()
    if dialect not in SUPPORTED:
        raise _error(path, (*parts, dialect), f"unknown filter dialect '{dialect}' ({_choices()})")
    return str(dialect), body


def _attribute_items(body: object, path: str, parts: Parts) -> tuple[tuple[str, str], ...]:
    dialect = parts[-1]
    if not isinstance(body, dict) or not body:
        raise _error(path, parts, f"'{dialect}' must map attribute names to values")
    items: list[tuple[str, str]] = []
    for name, value in body.items():
        at = (*parts, name)
        if not isinstance(name, str) or not _ATTRIBUTE.fullmatch(name):
            raise _error(path, at, "attribute names are lower-case letters and digits")
        # Subscriptions API 3.2.4: values are non-empty strings; YAML integers and booleans
        # are taken as their canonical strings (CE core, Type System).
        if not isinstance(value, str | int):
            raise _error(path, at, "must be a string")
        text = canonical(value)
        if not text:
            raise _error(path, at, "must not be empty")
        items.append((name, text))
    return tuple(items)


def _choices() -> str:
    return "supported: " + ", ".join(SUPPORTED)


def _error(path: str, parts: Parts, message: str) -> FilterError:
    suffix = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    full = (path + suffix) if path else suffix.lstrip(".")
    return FilterError(full, message, parts)


class Selector(Protocol):
    """What routing reads of a subscription (CE Subscriptions API 3.2: `types`, `source` and
    `filters`, all of which must match)."""

    @property
    def name(self) -> str: ...
    @property
    def types(self) -> tuple[str, ...]: ...
    @property
    def source(self) -> str | None: ...
    @property
    def filters(self) -> tuple[Filter, ...]: ...


def match(sub: Selector, event: Event) -> bool:
    """True when the event passes the subscription's `types`, `source` and every filter."""
    attributes = event.attributes
    if sub.types and attributes.get("type") not in sub.types:
        return False
    if sub.source is not None and attributes.get("source") != sub.source:
        return False
    for f in sub.filters:  # noqa: SIM110 -- a plain loop beats all() over a generator
        if not f.match(event):
            return False
    return True


def explain(sub: Selector, event: Event) -> tuple[bool, str]:
    """Whether the subscription takes the event, and the first reason it does not."""
    attributes = event.attributes
    kind = attributes.get("type")
    if sub.types and kind not in sub.types:
        return False, f"type {_show(kind)} not in types [{', '.join(sub.types)}]"
    source = attributes.get("source")
    if sub.source is not None and source != sub.source:
        return False, f"source {_show(source)} is not {sub.source}"
    for i, f in enumerate(sub.filters):
        why = f.reason(event)
        if why is not None:
            return False, f"filters[{i}] ({f.describe()}) did not match: {why}"
    return True, "matched"


def _show(value: object) -> str:
    return "(missing)" if value is None else str(value)


def _dialect_of(f: Filter) -> str:
    if isinstance(f, _Attributes):
        return f._dialect
    if isinstance(f, _All | _Any):
        return "all" if isinstance(f, _All) else "any"
    return "not" if isinstance(f, _Not) else "sql" if isinstance(f, _Sql) else "data"


def type_tests(f: Filter) -> list[tuple[str, str]]:
    """Every (dialect, value) test that selects on the `type` attribute inside a filter, nested
    ones too; tests under `not` exclude types, so they are left out."""
    return [(dialect, value) for _, dialect, value in type_tests_at(f)]


def type_tests_at(f: Filter) -> list[tuple[Parts, str, str]]:
    """`type_tests`, each with the key path of its test inside the filter
    (`("any", 0, "prefix", "type")`)."""
    if isinstance(f, _Attributes):
        return [((f._dialect, name), f._dialect, value) for name, value in f._items
                if name == "type"]  # fmt: skip
    if isinstance(f, _All | _Any):
        dialect = _dialect_of(f)
        return [
            ((dialect, i, *parts), kind, value)
            for i, inner in enumerate(f._filters)
            for parts, kind, value in type_tests_at(inner)
        ]
    return []


def sql_warnings(f: Filter) -> list[tuple[Parts, str]]:
    """What the CESQL compiler found legal but suspicious in the `sql` filters inside a filter,
    each with the key path of its `sql` inside the filter."""
    if isinstance(f, _Sql):
        return [(("sql",), f"{f.describe()}: {w}") for w in f._expression.warnings]
    if isinstance(f, _All | _Any):
        dialect = _dialect_of(f)
        return [
            ((dialect, i, *parts), w)
            for i, inner in enumerate(f._filters)
            for parts, w in sql_warnings(inner)
        ]
    if isinstance(f, _Not):
        return [(("not", *parts), w) for parts, w in sql_warnings(f._filter)]
    return []


def admits_type(f: Filter, kind: str) -> bool | None:
    """What the filter says of events of type `kind` without seeing them: True when it passes
    every one, False when it passes none, None when it depends on other attributes or data."""
    if isinstance(f, _Attributes):
        verdict: bool | None = True
        for name, value in f._items:
            if name != "type":
                verdict = None
            elif not f._test(kind, value):
                return False
        return verdict
    if isinstance(f, _All | _Any):
        verdicts = [admits_type(inner, kind) for inner in f._filters]
        decisive, other = (False, True) if isinstance(f, _All) else (True, False)
        if decisive in verdicts:
            return decisive
        return other if all(v is other for v in verdicts) else None
    if isinstance(f, _Not):
        inner = admits_type(f._filter, kind)
        return None if inner is None else not inner
    return None  # sql and data look at more than the type
