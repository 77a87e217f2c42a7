"""The generated config schemas as an oracle: a deployment the loader accepts must validate
against them, file by file (`gateway schema`, README "Editing")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gateway.config import collect
from gateway.config.schemagen import KINDS, schema
from gateway.diagnostics import format_path


@cache
def validator(kind: str) -> jsonschema.Draft202012Validator:
    assert kind in KINDS
    document = schema(kind)
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def errors(kind: str, value: Any) -> list[tuple[str, str]]:
    """(key path, message) of every schema violation, paths written as the loader writes them;
    under `anyOf`/`oneOf`, the violations of each alternative too (where the key is named)."""
    found: list[tuple[str, str]] = []
    pending = list(validator(kind).iter_errors(value))
    while pending:
        error = pending.pop()
        found.append((format_path(tuple(error.absolute_path)), error.message))
        pending.extend(error.context or ())
    return sorted(set(found))


def errors_in(kind: str, text: str) -> list[tuple[str, str]]:
    return errors(kind, yaml.safe_load(text))


def assert_valid(kind: str, path: Path) -> None:
    problems = errors(kind, yaml.safe_load(path.read_text(encoding="utf-8")))
    assert problems == [], f"{path} fails the {kind} schema: {json.dumps(problems)}"


def check_deployment(path: Path, env: Mapping[str, str]) -> bool:
    """When the loader takes the deployment at `path`, every file it read validates against
    its kind's schema. True when the deployment loaded (and so was checked)."""
    config, problems = collect(path, env)
    if config is None or problems:
        return False
    assert_valid("config", path)
    for kind, files in (
        ("subscriptions", {s.file for s in config.subscriptions}),
        ("sources", {s.file for s in config.sources}),
    ):
        for file in sorted(files):
            assert_valid(kind, Path(file))
    return True
