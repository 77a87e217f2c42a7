"""The event catalog as plain data: what can be published, by whom, with which schema, and who
receives it.

Built from the loaded config and the schemas folder only (no store, no network), and made of
what the files say rather than of the environment: sinks, tokens and secrets never appear, so
a catalog generated in CI equals the one committed by a developer.

- Event types: every type a schema governs by its file name, every type a subscription names
  in `types` or tests with an `exact` filter, and every literal `type` a source produces.
  Each lists its schema, its other versions (schemas chosen by `dataschema`: files without a
  type of their own whose `$id` or file name belongs to the type), who may publish it and
  which subscriptions receive it, always or depending on other attributes.
- Patterns: the `type` templates of sources that depend on the request (`com.github.{...}`),
  with the subscriptions whose type tests could match them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from gateway.config.model import Config, Subscription
from gateway.config.model import Source as SourceSpec
from gateway.routing.filters import admits_type, type_tests
from gateway.schemas.documents import SchemaDocument, read_documents


@dataclass(frozen=True)
class Schema:
    file: str  # the schemas folder's name joined with the path inside it
    id: str | None
    title: str | None
    description: str | None
    document: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class Receiver:
    subscription: str
    always: bool  # False: only events that also pass `conditions`
    conditions: tuple[str, ...]


@dataclass(frozen=True)
class Publisher:
    kind: str  # producer | source | anyone
    name: str
    detail: str  # the globs or template that allow it


@dataclass(frozen=True)
class EventType:
    type: str
    schema: Schema | None
    versions: tuple[Schema, ...]
    publishers: tuple[Publisher, ...]
    receivers: tuple[Receiver, ...]


@dataclass(frozen=True)
class Pattern:
    template: str
    source: str
    receivers: tuple[Receiver, ...]


@dataclass(frozen=True)
class Catalog:
    types: tuple[EventType, ...]
    patterns: tuple[Pattern, ...]
    config: Config = field(repr=False)
    unknown_types: str = "accept"


def build(config: Config) -> Catalog:
    documents, _ = read_documents(config.schemas)
    folder = PurePosixPath(Path(config.schemas).name or ".")
    schemas = {d.type: _schema(folder, d) for d in documents if d.type is not None}
    others = [_schema(folder, d) for d in documents if d.type is None and _id(d) is not None]
    names = set(schemas) | _named_types(config)
    types = tuple(
        EventType(
            type=name,
            schema=schemas.get(name),
            versions=_versions(name, schemas.get(name), others),
            publishers=_publishers(config, name),
            receivers=_receivers(config, name),
        )
        for name in sorted(names)
    )
    return Catalog(types, _patterns(config), config, config.unknown_types)


def _id(document: SchemaDocument) -> str | None:
    value = document.value.get("$id") if isinstance(document.value, dict) else None
    return value if isinstance(value, str) else None


def _schema(folder: PurePosixPath, document: SchemaDocument) -> Schema:
    value = document.value if isinstance(document.value, dict) else {}
    title, description = value.get("title"), value.get("description")
    return Schema(
        file=str(folder / document.relative),
        id=_id(document),
        title=title if isinstance(title, str) else None,
        description=description if isinstance(description, str) else None,
        document=document.value,
    )


def _versions(name: str, main: Schema | None, others: list[Schema]) -> tuple[Schema, ...]:
    """Schemas for `dataschema` that belong to the type: the file is named `<type>.<version>`,
    or the `$id` differs from the type's own only in its last segment (`.../created/v2`)."""
    family = main.id.rsplit("/", 1)[0] + "/" if main and main.id and "/" in main.id else None
    found = [
        s for s in others
        if PurePosixPath(s.file).name.startswith(name + ".")
        or (family is not None and s.id is not None and s.id.startswith(family))
    ]  # fmt: skip
    return tuple(sorted(found, key=lambda s: s.id or s.file))


def _named_types(config: Config) -> set[str]:
    names: set[str] = set()
    for sub in config.subscriptions:
        names.update(sub.types)
        for f in sub.filters:
            names.update(value for dialect, value in type_tests(f) if dialect == "exact")
    for source in config.sources:
        names.update(t for t in _type_templates(source) if _literal(t))
    return names


def _type_templates(source: SourceSpec) -> list[Any]:
    return [t for attribute, templates in source.event if attribute == "type" for t in templates]


def _literal(template: Any) -> bool:
    return all(isinstance(part, str) for part in template.parts)


def _template_pattern(template: Any) -> re.Pattern[str]:
    # A reference may resolve to any non-empty text.
    return re.compile(
        "".join(re.escape(p) if isinstance(p, str) else ".+" for p in template.parts)
    )


def _publishers(config: Config, name: str) -> tuple[Publisher, ...]:
    found: list[Publisher] = []
    for producer in config.producers:
        if not producer.types:
            found.append(Publisher("producer", producer.name, "any type"))
        elif any(fnmatchcase(name, glob) for glob in producer.types):
            found.append(Publisher("producer", producer.name, ", ".join(producer.types)))
    for source in config.sources:
        for template in _type_templates(source):
            if _template_pattern(template).fullmatch(name):
                found.append(Publisher("source", source.name, template.text))
                break
    if not config.producers:
        found.insert(0, Publisher("anyone", "POST /events", "no producers are declared"))
    return tuple(found)


def _receivers(config: Config, name: str) -> tuple[Receiver, ...]:
    found = []
    for sub in config.subscriptions:
        verdict = _admits(sub, name)
        if verdict is not False:
            found.append(Receiver(sub.name, verdict is True, _conditions(sub, name)))
    return tuple(found)


def _admits(sub: Subscription, name: str) -> bool | None:
    if sub.types and name not in sub.types:
        return False
    verdict: bool | None = True if sub.source is None else None
    for f in sub.filters:
        said = admits_type(f, name)
        if said is False:
            return False
        if said is None:
            verdict = None
    return verdict


def _conditions(sub: Subscription, name: str) -> tuple[str, ...]:
    """What else must hold: the source shorthand and every filter not settled by the type."""
    found = [] if sub.source is None else [f"source is {sub.source}"]
    found += [f.describe() for f in sub.filters if admits_type(f, name) is None]
    return tuple(found)


def _patterns(config: Config) -> tuple[Pattern, ...]:
    found = []
    for source in config.sources:
        for template in _type_templates(source):
            if _literal(template):
                continue
            receivers = tuple(
                Receiver(sub.name, False, _pattern_conditions(sub))
                for sub in config.subscriptions
                if _may_take(sub, template)
            )
            found.append(Pattern(template.text, source.name, receivers))
    return tuple(found)


def _may_take(sub: Subscription, template: Any) -> bool:
    """Could some type the template produces pass the subscription's type tests?"""
    pattern = _template_pattern(template)
    if sub.types:
        return any(pattern.fullmatch(t) for t in sub.types)
    head = ""
    for part in template.parts:
        if not isinstance(part, str):
            break
        head += part
    for f in sub.filters:
        for dialect, value in type_tests(f):
            if dialect == "exact" and not pattern.fullmatch(value):
                return False
            if dialect == "prefix" and not (value.startswith(head) or head.startswith(value)):
                return False
    return True


def _pattern_conditions(sub: Subscription) -> tuple[str, ...]:
    found = [f"types {', '.join(sub.types)}"] if sub.types else []
    if sub.source is not None:
        found.append(f"source is {sub.source}")
    return (*found, *(f.describe() for f in sub.filters))
