"""JSON Schemas (draft 2020-12) of the configuration files, generated from `gateway.config.spec`.

`gateway schema [config|subscriptions|sources]` prints them; editors read them through the YAML
language server (`# yaml-language-server: $schema=...`) or a file mapping. `${VAR}` may stand
for any value (it is expanded before the loader reads the value), so wherever a number, a flag,
a duration, a choice or a patterned string is expected a string holding `${` is accepted too.
Copies ship in the package (`gateway/config/schema/`) and in the repository (`config/schema/`);
a test keeps both equal to this output.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.config import spec
from gateway.config.spec import (
    Anything,
    Choice,
    Duration,
    Flag,
    Integer,
    ListOf,
    MapOf,
    Node,
    Nullable,
    Number,
    OneOf,
    Ref,
    Section,
    Text,
    Url,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
KINDS = tuple(spec.FILES_BY_KIND)
# A string with `${`: expanded from the environment before the loader reads it.
VARIABLE = {"type": "string", "pattern": r"\$\{", "description": "${VAR} or ${VAR:-default}"}
_VARIABLE_REF = {"$ref": "#/$defs/variable"}
_NUMBER = r"\d+(\.\d+)?"
DURATION = rf"^\s*({_NUMBER}|({_NUMBER}(ms|s|m|h|d))+)\s*$"
POSITIVE_DURATION = rf"^(?=.*[1-9]){DURATION[1:]}"
URL = (
    r"^([Hh][Tt][Tt][Pp][Ss]?|[Nn][Aa][Tt][Ss]|[Aa][Mm][Qq][Pp]|[Mm][Qq][Tt][Tt])"
    r"://[^\s/?#]+"
)


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one file kind (`config`, `subscriptions`, `sources`)."""
    root = spec.FILES_BY_KIND[kind]
    body = _node(root)
    return {
        "$schema": DRAFT,
        "title": root.doc,
        **{k: v for k, v in body.items() if k != "description"},
        "$defs": {"variable": VARIABLE, "filter": _filter()},
    }


def text(kind: str) -> str:
    """The schema as written to files and printed: stable key order, two-space indents."""
    return json.dumps(schema(kind), indent=2, ensure_ascii=False) + "\n"


def packaged(kind: str) -> str:
    """The copy shipped in the package."""
    return resources.files("gateway.config").joinpath("schema", f"{kind}.json").read_text("utf-8")


def write(folder: Path) -> list[Path]:
    """Write every kind's schema into `folder` as `<kind>.json`; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = folder / f"{kind}.json"
        path.write_text(text(kind), encoding="utf-8")
        written.append(path)
    return written


def _described(doc: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"description": doc, **body} if doc else body


def _or_variable(doc: str, body: dict[str, Any]) -> dict[str, Any]:
    return _described(doc, {"anyOf": [body, _VARIABLE_REF]})


def _node(node: Node) -> dict[str, Any]:  # noqa: C901 -- one case per kind of value
    match node:
        case Text(doc, pattern, empty):
            body: dict[str, Any] = {"type": "string"}
            if not empty:
                body["minLength"] = 1
            if pattern is None:
                return _described(doc, body)
            return _or_variable(doc, {**body, "pattern": pattern})
        case Url(doc):
            return _or_variable(doc, {"type": "string", "pattern": URL})
        case Integer(doc, minimum, maximum):
            body = {"type": "integer"}
            if minimum is not None:
                body["minimum"] = minimum
            if maximum is not None:
                body["maximum"] = maximum
            return _or_variable(doc, body)
        case Number(doc, minimum, maximum):
            return _or_variable(doc, {"type": "number", "minimum": minimum, "maximum": maximum})
        case Flag(doc):
            return _or_variable(doc, {"type": "boolean"})
        case Duration(doc, positive):
            number = {"type": "number", "exclusiveMinimum" if positive else "minimum": 0}
            written = {"type": "string", "pattern": POSITIVE_DURATION if positive else DURATION}
            doc = doc or "a duration: 250ms, 10s, 5m, 2h, 1d, or seconds"
            return _described(doc, {"anyOf": [written, number, _VARIABLE_REF]})
        case Choice(doc, options):
            return _or_variable(doc, {"enum": list(options)})
        case ListOf(item, doc, min_items):
            body = {"type": "array", "items": _node(item)}
            if min_items:
                body["minItems"] = min_items
            return _described(doc, body)
        case MapOf(value, doc, names, min_items, excluded):
            body = {"type": "object", "additionalProperties": _node(value)}
            if names is not None:
                body["propertyNames"] = {"pattern": names}
            if excluded:
                body["propertyNames"] = {**body.get("propertyNames", {}),
                                         "not": {"enum": list(excluded)}}
            if min_items:
                body["minProperties"] = min_items
            return _described(doc, body)
        case Section():
            return _section(node)
        case OneOf(options, doc):
            return _described(doc, {"anyOf": [_node(option) for option in options]})
        case Ref(name, doc):
            return _described(doc, {"$ref": f"#/$defs/{name}"})
        case Nullable(value, doc):
            return _described(doc, {"anyOf": [_node(value), {"type": "null"}]})
        case Anything(doc):
            return _described(doc, {})
    raise TypeError(f"no schema for {node!r}")


def _section(section: Section) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": ["object", "null"] if section.nullable else "object",
        "properties": {key: _node(value) for key, value in section.keys.items()},
        "additionalProperties": False,
    }
    if section.required:
        body["required"] = list(section.required)
    body.update(section.rules)
    return _described(section.doc, body)


def _filter() -> dict[str, Any]:
    """CE Subscriptions API 3.2.4: a filter is a mapping with exactly one dialect key."""
    return {
        "description": "one filter: a mapping with exactly one dialect key",
        "oneOf": [
            {
                "type": "object",
                "properties": {dialect: _node(body)},
                "required": [dialect],
                "additionalProperties": False,
            }
            for dialect, body in spec.FILTER_DIALECTS.items()
        ],
    }
