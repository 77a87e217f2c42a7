"""JSON Schema drafts the gateway accepts, and the check of a schema against its meta-schema.

Draft 2020-12 applies when a schema has no `$schema`; 2019-09 and draft-07 apply when `$schema`
names them (with `http` or `https`, with or without the empty fragment `#`). Meta-schemas are
bundled: checking never fetches anything.
"""

from __future__ import annotations

from typing import Any

# The package ships no type information; `types-jsonschema` provides it where installed.
import jsonschema  # type: ignore[import-untyped,unused-ignore]
import jsonschema_rs
from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]
from jsonschema.protocols import Validator  # type: ignore[import-untyped,unused-ignore]

from gateway.diagnostics import Problem
from gateway.schemas.documents import SchemaDocument
from gateway.schemas.refs import subschemas

DEFAULT = "https://json-schema.org/draft/2020-12/schema"

_DRAFTS: dict[str, type[Validator]] = {
    "json-schema.org/draft/2020-12/schema": jsonschema.Draft202012Validator,
    "json-schema.org/draft/2019-09/schema": jsonschema.Draft201909Validator,
    "json-schema.org/draft-07/schema": jsonschema.Draft7Validator,
}
_META = {key: cls(cls.META_SCHEMA) for key, cls in _DRAFTS.items()}


def draft_key(schema: Any) -> str | None:
    """The accepted draft a schema declares (2020-12 when it declares none); None if unknown."""
    declared = schema.get("$schema", DEFAULT) if isinstance(schema, dict) else DEFAULT
    if not isinstance(declared, str):
        return None
    key = declared.removesuffix("#").removeprefix("https://").removeprefix("http://")
    return key if key in _DRAFTS else None


def meta_problems(document: SchemaDocument) -> list[Problem]:
    """Every place where the document breaks its meta-schema, each at the offending key's line."""
    key = draft_key(document.value)
    if key is None:
        declared = document.value.get("$schema")
        return [
            document.problem(
                ("$schema",),
                f"unsupported $schema {declared!r}: use draft 2020-12 (the default), "
                "2019-09 or draft-07",
            )
        ]
    problems = _regex_problems(document)
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for error in _META[key].iter_errors(document.value):
        # A failed `anyOf`/`oneOf` in a meta-schema hides the useful message in its context.
        error = best_match([error]) or error
        path = tuple(error.absolute_path)
        if (path, error.message) in seen:
            continue  # 2019-09/2020-12 meta-schemas reach a keyword through several vocabularies
        seen.add((path, error.message))
        problems.append(document.problem(path, f"invalid schema: {error.message}"))
    return problems


def _regex_problems(document: SchemaDocument) -> list[Problem]:
    """Regular expressions the validator cannot compile, wherever they are (2020-12 meta-schemas
    do not assert the "regex" format, and a pattern in unused `$defs` is compiled only when some
    other file references it)."""
    problems = []
    for path, _base, node in subschemas(document.value, (), document.uri):
        found = []
        if isinstance(node.get("pattern"), str):
            found.append(((*path, "pattern"), node["pattern"]))
        if isinstance(node.get("patternProperties"), dict):
            found.extend(((*path, "patternProperties", p), p) for p in node["patternProperties"])
        for where, pattern in found:
            try:
                jsonschema_rs.validator_for({"pattern": pattern})
            except jsonschema_rs.ValidationError as exc:
                problems.append(document.problem(where, f"invalid schema: {exc.message}"))
    return problems
