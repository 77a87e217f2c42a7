"""The event catalog (`gateway catalog`): every event type, its schema, who may publish it and
who receives it, as Markdown, JSON or an AsyncAPI 3.0 document; and the check that a committed
catalog is still what would be generated (`gateway check --catalog FILE`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.catalog import asyncapi, markdown
from gateway.catalog.model import Catalog, build
from gateway.config.model import Config
from gateway.diagnostics import Problem

FORMATS = ("markdown", "json", "asyncapi")

__all__ = ["FORMATS", "Catalog", "build", "format_for", "render", "stale"]


def _json(catalog: Catalog) -> dict[str, Any]:
    types = [asdict(t) for t in catalog.types]
    for t in types:
        for schema in (t["schema"], *t["versions"]):
            if schema is not None:
                del schema["document"]
    body: dict[str, Any] = {
        "unknown_types": catalog.unknown_types,
        "types": types,
        "patterns": [asdict(p) for p in catalog.patterns],
    }
    config = catalog.config
    body["subscriptions"] = [
        {"name": s.name, "mode": str(s.delivery.mode), "types": list(s.types), "source": s.source,
         "filters": [f.describe() for f in s.filters]}
        for s in config.subscriptions
    ]  # fmt: skip
    body["producers"] = [
        {"name": p.name, "sources": list(p.sources), "types": list(p.types)}
        for p in config.producers
    ]
    body["sources"] = [
        {"name": s.name, "path": s.path, "preset": s.preset, "verify": s.verify.scheme}
        for s in config.sources
    ]
    return body


def render(config: Config, form: str) -> str:
    """The catalog of `config` in one of `FORMATS`, as the text written to a file."""
    catalog = build(config)
    if form == "markdown":
        return markdown.render(catalog)
    if form == "json":
        return orjson.dumps(_json(catalog), option=orjson.OPT_INDENT_2).decode() + "\n"
    document = asyncapi.render(catalog)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def format_for(path: Path) -> str:
    """The format a catalog file is written in, by its name: `.md`, `.json`, else AsyncAPI."""
    suffix = path.suffix.lower()
    return {".md": "markdown", ".markdown": "markdown", ".json": "json"}.get(suffix, "asyncapi")


def stale(config: Config, path: Path, shown: str) -> Problem | None:
    """A problem when the catalog committed at `path` differs from what would be generated."""
    form = format_for(path)
    try:
        committed = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        committed = None
    except (OSError, UnicodeDecodeError):
        return Problem(shown, 0, "", "cannot read the catalog")
    if committed is None:
        message = f"catalog not found: write it with `gateway catalog --format {form} -o {shown}`"
        return Problem(shown, 0, "", message)
    fresh = render(config, form)
    if committed == fresh:
        return None
    line = _first_difference(committed, fresh)
    message = (
        f"the catalog is out of date (first difference at line {line}): "
        f"regenerate it with `gateway catalog --format {form} -o {shown}`"
    )
    return Problem(shown, line, "", message)


def _first_difference(old: str, new: str) -> int:
    for number, (a, b) in enumerate(zip(old.splitlines(), new.splitlines(), strict=False), 1):
        if a != b:
            return number
    return min(len(old.splitlines()), len(new.splitlines())) + 1
