"""Templates that build a CloudEvent attribute from a provider's request.

A template is literal text with references in braces: `"com.shop.{body.event}"`. References
read the request: `{headers.<name>}` (names are case-insensitive), `{query.<name>}` and
`{body.<dotted.path>}`, where a path segment made of digits indexes a list
(`{body.items.0.sku}`). `{{` and `}}` stand for literal braces. Templates are compiled once, at
config load, so that a syntax error is a configuration problem, never a request failure.

Signature templates (what an HMAC signs, `verify.signed`) take other references: the raw
`{body}` bytes, the signed `{timestamp}` and `{headers.<name>}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

HEADERS = "headers"
QUERY = "query"
BODY = "body"
TIMESTAMP = "timestamp"

ATTRIBUTE_ROOTS = (HEADERS, QUERY, BODY)
SIGNATURE_ROOTS = (BODY, TIMESTAMP, HEADERS)


class _Nothing:
    """Marker: a reference that resolves to nothing (absent, null or empty)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


class TemplateError(ValueError):
    """A template that cannot be compiled; `offset` is the 0-based position of the fault."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset {offset})")
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Reference:
    """One `{...}` of a template: where to read (`root`) and the path below it."""

    root: str
    path: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The reference as written, normalized: `body.items.0.sku`."""
        return ".".join((self.root, *self.path))

    @property
    def pointer(self) -> str:
        """A JSON Pointer (RFC 6901) into the request seen as {headers, query, body}."""
        parts = (self.root, *self.path)
        return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)

    def __str__(self) -> str:
        return "{" + self.text + "}"


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: literal strings and references, in order."""

    text: str
    parts: tuple[str | Reference, ...] = field(default=(), compare=False)

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(p for p in self.parts if isinstance(p, Reference))

    @property
    def single(self) -> Reference | None:
        """The reference when the template is exactly one reference and no literal text."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Reference):
            return self.parts[0]
        return None


def literal(text: str) -> Template:
    """A template of literal text only (no parsing: braces are kept as they are)."""
    return Template(text.replace("{", "{{").replace("}", "}}"), (text,) if text else ())


_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")  # RFC 9110 5.6.2 token: a header name


def _reference(inner: str, offset: int, roots: tuple[str, ...]) -> Reference:
    root, dot, rest = inner.partition(".")
    if root not in roots:
        choices = ", ".join(roots)
        raise TemplateError(f"unknown reference {{{inner}}}: it must start with {choices}", offset)
    if root == HEADERS:
        if not _NAME.fullmatch(rest):
            raise TemplateError(f"{{{inner}}}: write {{headers.<header name>}}", offset)
        return Reference(HEADERS, (rest.lower(),))
    if root == QUERY:
        if not rest:
            raise TemplateError(f"{{{inner}}}: write {{query.<parameter name>}}", offset)
        return Reference(QUERY, (rest,))
    if root == TIMESTAMP or (root == BODY and roots == SIGNATURE_ROOTS):
        if dot:
            raise TemplateError(f"{{{inner}}}: write {{{root}}} alone here", offset)
        return Reference(root)
    segments = tuple(rest.split(".")) if dot else ()
    if not segments or "" in segments:
        raise TemplateError(f"{{{inner}}}: write {{body.<dotted.path>}}, e.g. {{body.order.id}}",
                            offset)  # fmt: skip
    return Reference(BODY, segments)


def compile_template(text: str, roots: tuple[str, ...] = ATTRIBUTE_ROOTS) -> Template:
    """Compile `text`; raises `TemplateError` naming the fault and its offset."""
    parts: list[str | Reference] = []
    buffer: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text[i + 1 : i + 2] == ch:
            buffer.append(ch)
            i += 2
            continue
        if ch == "}":
            raise TemplateError("'}' without a matching '{' (write '}}' for a literal brace)", i)
        if ch != "{":
            buffer.append(ch)
            i += 1
            continue
        end = text.find("}", i + 1)
        opened = text.find("{", i + 1)
        if end < 0 or 0 <= opened < end:
            raise TemplateError("'{' without a matching '}' (write '{{' for a literal brace)", i)
        inner = text[i + 1 : end].strip()
        if buffer:
            parts.append("".join(buffer))
            buffer = []
        parts.append(_reference(inner, i, roots))
        i = end + 1
    if buffer:
        parts.append("".join(buffer))
    return Template(text, tuple(parts))


@dataclass(frozen=True, slots=True)
class Inputs:
    """What attribute templates read: header names lower-case, the body as a JSON-like value."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: Any = NOTHING


def first_values(items: Iterable[tuple[str, str]], *, lower: bool) -> dict[str, str]:
    """One value per name, the first one sent; names lower-cased when `lower` (headers)."""
    out: dict[str, str] = {}
    for key, value in items:
        out.setdefault(key.lower() if lower else key, value)
    return out


class Unusable(Exception):
    """A reference that gives no value an attribute can take; `reason` says why."""

    def __init__(self, reference: Reference, reason: str) -> None:
        super().__init__(f"{reference} {reason}")
        self.reference = reference
        self.reason = reason


def _step(value: Any, segment: str) -> Any:
    if isinstance(value, dict):
        return value.get(segment, NOTHING)
    if isinstance(value, list) and segment.isdigit() and segment.isascii():
        index = int(segment)
        return value[index] if index < len(value) else NOTHING
    return NOTHING


def lookup(reference: Reference, inputs: Inputs) -> Any:
    """The value a reference reads, or NOTHING when it is absent, null or empty."""
    if reference.root == HEADERS:
        value: Any = inputs.headers.get(reference.path[0], NOTHING)
    elif reference.root == QUERY:
        value = inputs.query.get(reference.path[0], NOTHING)
    else:
        value = inputs.body
        for segment in reference.path:
            if value is NOTHING:
                break
            value = _step(value, segment)
    return NOTHING if value is None or value == "" else value


def as_text(value: str | int | float | bool) -> str:
    """The text of a scalar: JSON's spelling for numbers and booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value).decode()


def _scalar(reference: Reference, inputs: Inputs) -> str | int | float | bool:
    value = lookup(reference, inputs)
    if value is NOTHING:
        raise Unusable(reference, "resolves to nothing")
    if isinstance(value, dict | list):
        kind = "an object" if isinstance(value, dict) else "an array"
        raise Unusable(reference, f"is {kind}, not a string, number or boolean")
    if not isinstance(value, str | int | float | bool):
        raise Unusable(reference, "is not a string, number or boolean")
    return value


def resolve(template: Template, inputs: Inputs) -> str | int | float | bool:
    """The value of a template: the referenced value itself when the template is one
    reference (so numbers and booleans keep their type), else the text of every part joined.
    Raises `Unusable` for the first reference without a usable value."""
    single = template.single
    if single is not None:
        return _scalar(single, inputs)
    out: list[str] = []
    for part in template.parts:
        out.append(part if isinstance(part, str) else as_text(_scalar(part, inputs)))
    return "".join(out)
