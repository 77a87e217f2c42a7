"""The schema registry: loads a schemas folder once, then judges each event's `data` against it.

Validators are compiled once at load with `jsonschema_rs` against an offline registry of every
schema file (see `gateway.schemas.refs`); its retriever refuses every URI, so nothing is ever
fetched. The same compiled validator answers the happy path (`is_valid`) and, only when that
fails, lists the violations, so both always agree (formats included).

The work spent on invalid data is bounded: the list stops at `MAX_VIOLATIONS`, and for data
larger than `FULL_LISTING_BYTES` only the first violation is looked for (the validator builds
its whole error list at once, at a cost that grows with the number of violations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from gateway.diagnostics import Problem
from gateway.errors import SchemaViolation, Violation
from gateway.event import UNPARSED, DataKind, Event
from gateway.schemas.documents import SchemaDocument, read_documents
from gateway.schemas.drafts import meta_problems
from gateway.schemas.refs import Linkage, link, normalize_id

UNKNOWN_TYPES = ("accept", "reject")
# A 422 lists at most this many violations (and says `truncated` when there were more).
MAX_VIOLATIONS = 100
# Data over this size (JSON text) is checked up to its first violation only.
FULL_LISTING_BYTES = 16 * 1024
_DETAIL_LIMIT = 300  # a message quoting a large instance is cut here
# `format` is asserted in every draft: most users expect "date-time" or "email" to be checked
# (2020-12 Validation 7.2 makes it an annotation unless asserted). Unknown formats pass.
_EMAIL = jsonschema_rs.EmailOptions(allow_display_text=False)  # RFC 5321 Mailbox, no name


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one event's data."""

    valid: bool
    schema: str | None  # the `$id` (or the file's path in the schemas folder) used; None: none
    errors: tuple[Violation, ...] = ()
    truncated: bool = False  # `errors` lists only some of the violations

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "valid": self.valid,
            "schema": self.schema,
            "errors": [e.as_json() for e in self.errors],
        }
        if self.truncated:
            body["truncated"] = True
        return body


_UNGOVERNED = Verdict(True, None)


@dataclass(frozen=True, slots=True)
class _Schema:
    name: str
    validator: jsonschema_rs.Validator
    passed: Verdict  # built once: the happy path allocates nothing

    def judge(self, event: Event) -> Verdict:
        if event.kind is DataKind.NONE or event.data is None:
            return self._fail(Violation("", f"data is required by schema {self.name}"))
        if event.kind is not DataKind.JSON:
            return self._fail(Violation("", _not_json(event.datacontenttype, self.name)))
        value = event.value
        if value is UNPARSED:
            try:
                value = orjson.loads(event.data)
            except orjson.JSONDecodeError as exc:
                return self._fail(Violation("", f"data is not valid JSON: {exc}"))
        try:
            if self.validator.is_valid(value):
                return self.passed
            if len(event.data) > FULL_LISTING_BYTES:
                return self._first(value)
            found, more = _violations(self.validator.iter_errors(value), MAX_VIOLATIONS)
        except ValueError as exc:  # the validator's own limits (recursion); a safety net
            return self._fail(Violation("", f"data cannot be checked: {_first_line(exc)}"))
        return Verdict(False, self.name, found, more)

    def _first(self, value: Any) -> Verdict:
        """The first violation only: listing them all would cost time in proportion."""
        try:
            self.validator.validate(value)
        except jsonschema_rs.ValidationError as error:
            found, _ = _violations((error,), MAX_VIOLATIONS)
            return Verdict(False, self.name, found, True)
        return self.passed  # unreachable while is_valid and validate agree

    def _fail(self, violation: Violation) -> Verdict:
        return Verdict(False, self.name, (violation,))


class SchemaRegistry:
    """Compiled schemas by event type and by `$id`; immutable once built."""

    def __init__(
        self,
        by_type: Mapping[str, _Schema] | None = None,
        by_id: Mapping[str, _Schema] | None = None,
        files: int = 0,
    ) -> None:
        self._by_type = dict(by_type or {})
        self._by_id = dict(by_id or {})
        self.files = files  # schema files read, for `gateway check`'s summary

    @classmethod
    def load(cls, folder: Path) -> tuple[SchemaRegistry, list[Problem]]:
        """Load every .json/.yaml/.yml schema under `folder` (recursively) with every problem
        found; a missing folder gives an empty registry and no problem. Files with problems are
        left out of the registry (the gateway refuses to start on any problem anyway)."""
        documents, problems = read_documents(folder)
        broken: set[str] = set()
        for document in documents:
            found = meta_problems(document)
            if found:
                broken.add(document.file)
                problems.extend(found)
        linkage = link(documents, frozenset(broken))
        problems.extend(linkage.problems)
        usable = [d for d in documents if d.file not in linkage.unusable]
        compiled, found = _compile(usable, linkage, folder)
        problems.extend(found)
        by_type, found = _by_type(documents, compiled)
        problems.extend(found)
        by_id = {uri: compiled[d.file] for uri, d in linkage.ids.items() if d.file in compiled}
        return cls(by_type, by_id, len(documents)), sorted(set(problems))

    def types(self) -> frozenset[str]:
        """The event types that have a schema."""
        return frozenset(self._by_type)

    def verdict(self, event: Event, unknown_types: str = "accept") -> Verdict:
        """Judge `data` against the schema `dataschema` names, else the one of the event's type."""
        schema = None
        dataschema = event.dataschema
        if dataschema is not None:
            schema = self._by_id.get(normalize_id(dataschema))
        if schema is None:
            schema = self._by_type.get(event.type)
        if schema is not None:
            return schema.judge(event)
        if unknown_types == "accept":
            return _UNGOVERNED
        if unknown_types == "reject":
            return Verdict(False, None, (Violation("", f"no schema for type {event.type}"),))
        raise ValueError(f"unknown_types must be one of {UNKNOWN_TYPES}, not {unknown_types!r}")

    def validate(self, event: Event, unknown_types: str = "accept") -> None:
        """Raise `SchemaViolation` (422) listing the violations when the data does not match."""
        verdict = self.verdict(event, unknown_types)
        if verdict.valid:
            return
        if verdict.schema is None:
            raise SchemaViolation(f"no schema for type {event.type}", errors=verdict.errors)
        count = len(verdict.errors)
        if not verdict.truncated:
            summary = f"{count} violation" + ("" if count == 1 else "s")
        elif count == MAX_VIOLATIONS:
            summary = f"more than {count} violations; the first {count} are listed"
        else:
            summary = (
                f"data over {FULL_LISTING_BYTES} bytes is checked up to its first violation"
            )
        raise SchemaViolation(
            f"data does not match schema {verdict.schema}: {summary}",
            errors=verdict.errors,
            truncated=verdict.truncated,
        )


def _not_json(media: str | None, schema: str) -> str:
    """Why data that is not JSON fails a schema, and what the producer should send instead."""
    said = "it has no media type" if media is None else f"its media type is {media}"
    return (
        f"data is not JSON ({said}); schema {schema} applies to JSON data: send the "
        "Content-Type header application/json (binary mode) or the datacontenttype attribute "
        "application/json (structured mode), or leave datacontenttype out and put the JSON "
        "value in data (structured mode)"
    )


def _refuse(uri: str) -> Any:
    raise LookupError(f"{uri} is not a schema file here; schemas are never fetched")


def _name(document: SchemaDocument, linkage: Linkage) -> str:
    for uri, owner in linkage.ids.items():
        if owner is document:
            return uri
    return document.relative.as_posix()


def _compile(
    documents: list[SchemaDocument], linkage: Linkage, folder: Path
) -> tuple[dict[str, _Schema], list[Problem]]:
    try:
        registry = jsonschema_rs.Registry(linkage.resources, retriever=_refuse)
    except ValueError as exc:  # a safety net: linking has checked every reference already
        return {}, [Problem(str(folder), 0, "", f"cannot link schemas: {_first_line(exc)}")]
    compiled: dict[str, _Schema] = {}
    problems = []
    for document in documents:
        try:
            validator = jsonschema_rs.validator_for(
                document.value,
                registry=registry,
                base_uri=document.uri,
                retriever=_refuse,
                validate_formats=True,
                email_options=_EMAIL,
            )
        except jsonschema_rs.ValidationError as exc:  # e.g. a `pattern` that is no regex
            path = tuple(exc.instance_path)
            problems.append(document.problem(path, f"invalid schema: {exc.message}"))
            continue
        except ValueError as exc:
            problems.append(document.problem((), f"invalid schema: {_first_line(exc)}"))
            continue
        name = _name(document, linkage)
        compiled[document.file] = _Schema(name, validator, Verdict(True, name))
    return compiled, problems


def _by_type(
    documents: list[SchemaDocument], compiled: Mapping[str, _Schema]
) -> tuple[dict[str, _Schema], list[Problem]]:
    """One file per event type: a second file naming the same type is a problem."""
    owners: dict[str, SchemaDocument] = {}
    problems = []
    for document in documents:
        kind = document.type
        if kind is None:
            continue
        first = owners.setdefault(kind, document)
        if first is not document:
            problems.append(
                Problem(document.file, 0, "", f"type {kind} already has a schema: {first.file}")
            )
    by_type = {k: compiled[d.file] for k, d in owners.items() if d.file in compiled}
    return by_type, problems


def _escape(token: str | int) -> str:
    """One JSON pointer reference token (RFC 6901 section 3)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def _violations(
    errors: Iterable[jsonschema_rs.ValidationError], cap: int
) -> tuple[tuple[Violation, ...], bool]:
    """At most `cap` violations with a pointer into `data`, sorted by location, without
    repeats; and whether more were left out."""
    found: dict[Violation, tuple[tuple[int, int, str], ...]] = {}
    for error in errors:
        path = list(error.instance_path)
        kind = error.kind
        if isinstance(
            kind,
            jsonschema_rs.ValidationErrorKind.AdditionalProperties
            | jsonschema_rs.ValidationErrorKind.UnevaluatedProperties,
        ):
            # One violation per unexpected member, each pointing at the member itself.
            for name in kind.unexpected:
                _add(found, [*path, name], f"property {name!r} is not allowed")
        else:
            _add(found, path, error.message)
        if len(found) > cap:
            break
    ordered = sorted(found, key=lambda v: (found[v], v.detail))
    return tuple(ordered[:cap]), len(ordered) > cap


def _add(
    found: dict[Violation, tuple[tuple[int, int, str], ...]],
    path: list[str | int],
    detail: str,
) -> None:
    if len(detail) > _DETAIL_LIMIT:
        detail = detail[: _DETAIL_LIMIT - 1] + "…"
    pointer = "".join("/" + _escape(token) for token in path)
    # Array indexes sort as numbers: /items/2 before /items/10.
    key = tuple((0, t, "") if isinstance(t, int) else (1, 0, t) for t in path)
    found.setdefault(Violation(pointer, detail), key)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
