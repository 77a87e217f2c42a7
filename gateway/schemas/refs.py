"""Offline `$ref` resolution between schema files: which URI names which schema, what is missing.

Every file is known by its own URI (`file:///` plus its path inside the schemas folder) and by its
`$id`; subschemas with their own `$id` and anchors are known too. A `$ref` resolves against the
base URI in scope (JSON Schema 2020-12 Core 8.2.1 and 8.2.3: the nearest `$id`, else the file's
location). When that names no known schema but the same reference read against the referring
file's location names a file, that file is used: `"$ref": "common/money.json"` works in a file
whose `$id` is a remote-looking URI. Anything still unknown is a load problem; nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from gateway.diagnostics import Problem
from gateway.schemas.documents import SchemaDocument

JsonPath = tuple[str | int, ...]

# Keywords whose values are schemas (Core 10, Validation 6, and draft-07's equivalents); the
# values of every other keyword (`enum`, `const`, `examples`, ...) are data, never searched.
_SCHEMA_VALUED = frozenset(
    {
        "additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if",
        "items", "not", "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties",
    }
)  # fmt: skip
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SCHEMA_MAPS = frozenset(
    {"$defs", "definitions", "dependencies", "dependentSchemas", "patternProperties", "properties"}
)
_REF_KEYWORDS = ("$ref", "$dynamicRef")


@dataclass(frozen=True, slots=True)
class _Resource:
    document: SchemaDocument
    value: Any


@dataclass(frozen=True, slots=True)
class Linkage:
    """The outcome of linking: what the offline registry holds and what could not be linked."""

    resources: list[tuple[str, Any]]  # (URI, schema) pairs for the validator registry
    ids: dict[str, SchemaDocument]  # a file's `$id` (without an empty fragment) -> the file
    # files left out (by `file`): broken ones, those with an unresolvable reference, and those
    # that reference a file left out
    unusable: frozenset[str]
    problems: list[Problem] = field(default_factory=list)


def normalize_id(uri: str) -> str:
    """`$id` and `dataschema` compare without an empty fragment (`.../order#` is `.../order`)."""
    return uri.removesuffix("#")


def link(documents: list[SchemaDocument], broken: frozenset[str] = frozenset()) -> Linkage:
    """Index every file's URIs and check every reference; `broken` files (already reported, e.g.
    invalid against their meta-schema) and the files that reference them are left unusable."""
    return _Linker(documents, broken).run()


_Node = tuple[JsonPath, str, dict[str, Any]]  # where, base URI in scope, the subschema


def subschemas(node: Any, path: JsonPath, base: str) -> Iterator[_Node]:
    """Every subschema object with the base URI in scope for it (its own `$id` applied)."""
    if not isinstance(node, dict):
        return
    ident = node.get("$id")
    if isinstance(ident, str):
        base = urldefrag(urljoin(base, ident))[0]
    yield path, base, node
    for key, child in node.items():
        if isinstance(child, list) and key in _SCHEMA_LISTS:
            for index, item in enumerate(child):
                yield from subschemas(item, (*path, key, index), base)
        elif isinstance(child, dict) and key in _SCHEMA_MAPS:
            for name, item in child.items():
                yield from subschemas(item, (*path, key, name), base)
        elif key in _SCHEMA_VALUED:
            yield from subschemas(child, (*path, key), base)


_Reference = tuple[SchemaDocument, JsonPath, str, str]  # file, where, base URI, reference


def _references(document: SchemaDocument) -> Iterator[_Reference]:
    for path, base, node in subschemas(document.value, (), document.uri):
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str):
                yield document, (*path, keyword), base, ref


def _anchors(node: dict[str, Any], base: str) -> Iterator[str]:
    # Location-independent identifiers: 2020-12 Core 8.2.2, draft-07 Core 8.2.3.
    for keyword in ("$anchor", "$dynamicAnchor"):
        name = node.get(keyword)
        if isinstance(name, str):
            yield f"{base}#{name}"
    ident = node.get("$id")
    if isinstance(ident, str) and "#" in ident:  # draft-07 spells an anchor as `$id: "#name"`
        named, fragment = urldefrag(urljoin(base, ident))
        if fragment:
            yield f"{named}#{fragment}"


def _follow(value: Any, pointer: str) -> bool:
    """Whether the JSON pointer (RFC 6901, as a URI fragment) names something inside `value`."""
    for raw in pointer.split("/")[1:]:
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return False
    return True


class _Linker:
    def __init__(self, documents: list[SchemaDocument], broken: frozenset[str]) -> None:
        self.documents = documents
        self.files = {d.uri: _Resource(d, d.value) for d in documents}
        self.known: dict[str, _Resource] = dict(self.files)
        self.anchors: set[str] = set()
        self.ids: dict[str, SchemaDocument] = {}
        self.aliases: dict[str, _Resource] = {}
        self.depends: dict[str, set[str]] = {d.file: set() for d in documents}
        self.failed: set[str] = set(broken)
        self.problems: list[Problem] = []

    def run(self) -> Linkage:
        for document in self.documents:
            self._index(document)
        references = [r for d in self.documents for r in _references(d)]
        self._alias(references)
        for reference in references:
            self._check(*reference)
        unusable = self._spread_failures()
        resources: list[tuple[str, Any]] = []
        for document in self.documents:
            if document.file not in unusable:
                resources.append((document.uri, document.value))
                resources.extend((uri, document.value) for uri in self._ids_of(document))
        resources.extend((uri, r.value) for uri, r in self.aliases.items())
        ids = {uri: d for uri, d in self.ids.items() if d.file not in unusable}
        return Linkage(resources, ids, frozenset(unusable), self.problems)

    def _ids_of(self, document: SchemaDocument) -> list[str]:
        value = document.value
        if not isinstance(value, dict) or not isinstance(value.get("$id"), str):
            return []
        root = urldefrag(urljoin(document.uri, value["$id"]))[0]
        return [] if root == document.uri else [root]

    def _index(self, document: SchemaDocument) -> None:
        for path, base, node in subschemas(document.value, (), document.uri):
            self.anchors.update(_anchors(node, base))
            if not isinstance(node.get("$id"), str) or base == document.uri:
                continue
            owner = self.known.get(base)
            if owner is not None and owner.document is not document:
                self.failed.add(document.file)
                self.problems.append(
                    document.problem(
                        (*path, "$id"), f"duplicate $id {base}: {owner.document.file} has it too"
                    )
                )
                continue
            self.known[base] = _Resource(document, node)
            if not path:
                self.ids[base] = document

    def _alias(self, references: list[_Reference]) -> None:
        """Read a reference that names nothing against its file's location instead, where that
        names exactly one file for every file using the same reference."""
        candidates: dict[str, set[str]] = {}
        for document, _at, base, ref in references:
            named = urldefrag(urljoin(base, ref))[0]
            local = urldefrag(urljoin(document.uri, ref))[0]
            if named not in self.known and local in self.files:
                candidates.setdefault(named, set()).add(local)
        for named, places in candidates.items():
            if len(places) == 1:
                self.aliases[named] = self.files[places.pop()]

    def _check(self, document: SchemaDocument, at: JsonPath, base: str, ref: str) -> None:
        named, fragment = urldefrag(urljoin(base, ref))
        resource = self.known.get(named) or self.aliases.get(named)
        if resource is None:
            missing = (
                f"no schema file has the URI {named} (as its $id or its path in the schemas "
                "folder); schemas are never fetched"
            )
        else:
            self.depends[document.file].add(resource.document.file)
            missing = self._missing_fragment(named, resource, fragment)
        if missing:
            self.failed.add(document.file)
            self.problems.append(document.problem(at, f"unresolvable $ref {ref!r}: {missing}"))

    def _missing_fragment(self, named: str, resource: _Resource, fragment: str) -> str:
        if not fragment:
            return ""
        if fragment.startswith("/"):
            found = _follow(resource.value, fragment)
            return "" if found else f"{named} has no {unquote(fragment)}"
        names = {f"{uri}#{fragment}" for uri, r in self.known.items() if r.value is resource.value}
        if self.anchors & (names | {f"{named}#{fragment}"}):
            return ""
        return f"{named} has no anchor {fragment!r}"

    def _spread_failures(self) -> set[str]:
        """A file that references an unusable file is unusable too; the problem is reported once,
        where its cause is."""
        unusable = set(self.failed)
        changed = True
        while changed:
            changed = False
            for document in self.documents:
                if document.file not in unusable and self.depends[document.file] & unusable:
                    unusable.add(document.file)
                    changed = True
        return unusable
