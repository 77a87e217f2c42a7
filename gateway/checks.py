"""Checks across files for `gateway check`: do the subscriptions fit the schemas and the
egress policy?

- A subscription's `types` entry with no schema is an error under `unknown_types: reject`
  (no such event can ever be accepted) and a warning otherwise.
- A filter testing `type` against a value that no schema declares (exact), or that no schema's
  type starts/ends with (prefix/suffix), is a warning: usually a typo or a removed type. Types
  an any-format source can produce (its `type` templates) count as declared.
- A CESQL expression that is legal but probably not what its author meant (operator grouping
  surprises, a function that does not exist) is a warning.
- A sink or dead-letter sink written as a literal address that `egress` refuses is a warning:
  every attempt to it would fail (names are checked when they resolve, at delivery).

Findings are placed like the loader's problems: the line of the offending key and its path as
the subscription's own file numbers it (`subscriptions[0]` is the first of that file).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from gateway.config.model import Config, Subscription
from gateway.diagnostics import Problem
from gateway.egress import literal_address, refusal
from gateway.routing.filters import sql_warnings, type_tests_at

_TESTS = {
    "exact": lambda known, value: value in known,
    "prefix": lambda known, value: any(t.startswith(value) for t in known),
    "suffix": lambda known, value: any(t.endswith(value) for t in known),
}


def _source_types(config: Config) -> tuple[frozenset[str], tuple[str, ...]]:
    """What the sources' `type` templates can produce: literal types, and open prefixes (the
    literal text before a template's first reference, which may continue with anything)."""
    literal: set[str] = set()
    open_prefixes: list[str] = []
    for source in config.sources:
        for attribute, templates in source.event:
            if attribute != "type":
                continue
            for template in templates:
                head = ""
                for part in template.parts:
                    if not isinstance(part, str):
                        open_prefixes.append(head)
                        break
                    head += part
                else:
                    literal.add(head)
    return frozenset(literal), tuple(open_prefixes)


def _produced(dialect: str, value: str, open_prefixes: tuple[str, ...]) -> bool:
    if dialect == "exact":
        return any(value.startswith(p) for p in open_prefixes)
    if dialect == "prefix":
        return any(value.startswith(p) or p.startswith(value) for p in open_prefixes)
    return bool(open_prefixes)  # suffix: an open template may end with anything


def _at(sub: Subscription, message: str, *parts: str | int, severity: str = "warning") -> Problem:
    line, path = sub.where(*parts)
    return Problem(sub.file, line, path, message, severity)


def subscriptions_against_schemas(config: Config, known: Iterable[str]) -> list[Problem]:
    types = frozenset(known)
    literal, open_prefixes = _source_types(config)
    declared = types | literal
    problems: list[Problem] = []
    reject = config.unknown_types == "reject"
    for sub in config.subscriptions:
        for i, name in enumerate(sub.types):
            if name in types:
                continue
            if reject:
                message = (
                    f"type '{name}' has no schema and unknown_types is reject: "
                    "no such event can be accepted"
                )
                problems.append(_at(sub, message, "types", i, severity="error"))
            else:
                problems.append(_at(sub, f"type '{name}' has no schema", "types", i))
        for j, f in enumerate(sub.filters):
            for parts, warning in sql_warnings(f):
                problems.append(_at(sub, warning, "filters", j, *parts))
            for parts, dialect, value in type_tests_at(f):
                if not _TESTS[dialect](declared, value) and not _produced(
                    dialect, value, open_prefixes
                ):
                    message = (
                        f"the filter tests type {dialect} '{value}', which no schema declares "
                        "and no source produces"
                    )
                    problems.append(_at(sub, message, "filters", j, *parts))
    return problems


def sinks_against_egress(config: Config) -> list[Problem]:
    problems: list[Problem] = []
    for sub in config.subscriptions:
        for key, url in (("sink", sub.sink), ("dead_letter", sub.delivery.dead_letter)):
            try:
                host = urlsplit(url).hostname if url else None
            except ValueError:
                continue  # reported by the loader
            address = None if host is None else literal_address(host)
            why = None if address is None else refusal(address, config.egress)
            if why is not None:
                parts = ("sink",) if key == "sink" else ("delivery", "dead_letter")
                problems.append(_at(sub, f"every delivery would be refused: {why}", *parts))
    return problems
