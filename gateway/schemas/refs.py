"""Offline `$ref` resolution between schema files: which URI names which schema, what is missing.

Every file is known by its own URI (`file:///` plus its path inside the schemas folder) and by its
`$id`; subschemas with their own `$id` and anchors are known too. A `$ref` resolves against the
base URI in scope (JSON Schema 2020-12 Core 8.2.1 and 8.2.3: the nearest `$id`, else the file's
location). When that names no known schema but the same reference read against the referring
file's location names a file, that file is used: `"$ref": "common/money.json"` works in a file
whose `$id` is a remote-looking URI. Anything still unknown is a load problem; nothing is fetched.

Which keywords hold subschemas, identifiers and anchors in each draft is the `referencing`
library's knowledge (the one `jsonschema` uses); its registry holds the files and nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from referencing import Registry, Resource, Specification, exceptions
from referencing.jsonschema import DRAFT202012

from gateway.diagnostics import Problem
from gateway.schemas.documents import SchemaDocument

JsonPath = tuple[str | int, ...]
_REF_KEYWORDS = ("$ref", "$dynamicRef")


@dataclass(frozen=True, slots=True)
class _Resource:
    document: SchemaDocument
    resource: Resource[Any]


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


def _refuse(uri: str) -> Resource[Any]:
    """The registry's retrieval: every schema file is in it already, so nothing else is."""
    raise exceptions.NoSuchResource(uri)


_Node = tuple[JsonPath, str, Resource[Any]]  # where, base URI in scope, the subschema
_UNREADABLE = (AttributeError, TypeError, ValueError)  # a schema its meta-schema refuses


def _walk(spec: Specification[Any], node: Any, path: JsonPath, base: str) -> Iterator[_Node]:
    """The draft's own reading: which keywords hold subschemas and when `$id` counts; a
    keyword the draft cannot read (the meta-schema check reports it) is skipped."""
    if not isinstance(node, dict):
        return
    spec = _spec(node, spec)
    with contextlib.suppress(*_UNREADABLE):
        ident = spec.id_of(node)
        if isinstance(ident, str):
            base = urldefrag(urljoin(base, ident))[0]
    yield path, base, spec.create_resource(node)
    for key, value in node.items():
        try:
            places = {id(c): c for c in spec.subresources_of({key: value}) if isinstance(c, dict)}
        except _UNREADABLE:
            continue
        inner: Iterable[tuple[Any, Any]] = enumerate(value) if isinstance(value, list) else ()
        inner = value.items() if isinstance(value, dict) else inner
        for where, item in [((key,), value), *(((key, k), v) for k, v in inner)]:
            if places.pop(id(item), None) is not None:
                yield from _walk(spec, item, (*path, *where), base)


def _spec(value: Any, default: Specification[Any] = DRAFT202012) -> Specification[Any]:
    try:
        return default.detect(value)
    except AttributeError:  # a `$schema` that is no string
        return default


def subschemas(node: Any, path: JsonPath, base: str) -> Iterator[tuple[JsonPath, str, Any]]:
    """Every subschema object with the base URI in scope for it (its own `$id` applied)."""
    for where, scope, resource in _walk(DRAFT202012, node, path, base):
        yield where, scope, resource.contents


_Reference = tuple[SchemaDocument, JsonPath, str, str]  # file, where, base URI, reference


def _references(document: SchemaDocument) -> Iterator[_Reference]:
    for path, base, node in subschemas(document.value, (), document.uri):
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str):
                yield document, (*path, keyword), base, ref


class _Linker:
    def __init__(self, documents: list[SchemaDocument], broken: frozenset[str]) -> None:
        self.documents = documents
        self.broken = broken
        resources = (_spec(d.value).create_resource(d.value) for d in documents)
        self.files = {d.uri: _Resource(d, r) for d, r in zip(documents, resources, strict=True)}
        self.known: dict[str, _Resource] = dict(self.files)
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
        # Broken files are added only where a reference needs them: their contents may not be
        # schemas at all, and reading them fails (see `_check`).
        self.registry = Registry(retrieve=_refuse).with_resources(  # type: ignore[call-arg]
            self._entries(lambda document: document.file not in self.broken)
        ).crawl()
        for reference in references:
            self._check(*reference)
        unusable = self._spread_failures()
        ids = {uri: d for uri, d in self.ids.items() if d.file not in unusable}
        resources = [(d.uri, d.value) for d in self.documents if d.file not in unusable]
        resources += [(uri, d.value) for uri, d in ids.items()]
        resources += [(uri, r.document.value) for uri, r in self.aliases.items()]
        return Linkage(resources, ids, frozenset(unusable), self.problems)

    def _index(self, document: SchemaDocument) -> None:
        for path, base, resource in _walk(DRAFT202012, document.value, (), document.uri):
            if not isinstance(resource.contents.get("$id"), str) or base == document.uri:
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
            self.known[base] = _Resource(document, resource)
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

    def _entries(self, which: Callable[[SchemaDocument], bool]) -> list[tuple[str, Resource[Any]]]:
        every = {**self.known, **self.aliases}.items()
        return [(uri, r.resource) for uri, r in every if which(r.document)]

    def _check(self, document: SchemaDocument, at: JsonPath, base: str, ref: str) -> None:
        named, fragment = urldefrag(urljoin(base, ref))
        target = self.known.get(named) or self.aliases.get(named)
        registry: Registry[Any] = self.registry
        if target is not None:
            self.depends[document.file].add(target.document.file)
            if target.document.file in self.broken:
                registry = registry.with_resources(self._entries(lambda d: d is target.document))
        try:
            registry.resolver(base).lookup(ref)
            return
        except exceptions.PointerToNowhere:
            missing = f"{named} has no {unquote(fragment)}"
        except (exceptions.NoSuchAnchor, exceptions.InvalidAnchor):
            missing = f"{named} has no anchor {fragment!r}"
        except exceptions.Unresolvable:
            missing = (
                f"no schema file has the URI {named} (as its $id or its path in the schemas "
                "folder); schemas are never fetched"
            )
        except (AttributeError, TypeError, ValueError):
            if target is not None and target.document.file in self.broken:
                return  # a file that is no schema: reported once, where its cause is
            missing = f"{named} has no {unquote(fragment)}"  # a step into a non-container
        self.failed.add(document.file)
        self.problems.append(document.problem(at, f"unresolvable $ref {ref!r}: {missing}"))

    def _spread_failures(self) -> set[str]:
        """A file that references an unusable file is unusable too; the problem is reported once,
        where its cause is."""
        unusable = set(self.failed)
        while grown := {
            d.file for d in self.documents if self.depends[d.file] & unusable
        } - unusable:
            unusable |= grown
        return unusable
