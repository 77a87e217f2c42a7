"""Schema files on disk: finding them, parsing JSON or YAML with line numbers, naming their type.

A schema file governs the event type equal to its file name without the extension
(`schemas/shop/com.example.order.created.json` governs `com.example.order.created`), unless it is a
definitions-only file: one inside a folder named `common`, or with any folder or its own name
starting with `_` (`schemas/common/money.json`, `schemas/_defs/address.yaml`). Hidden files and
folders (starting with `.`) and files with other extensions are not schemas and are skipped.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import yaml

from gateway import yamlpos
from gateway.diagnostics import Problem, format_path

EXTENSIONS = frozenset({".json", ".yaml", ".yml"})
DEFINITIONS_FOLDER = "common"
# Every file is also addressable by a URI built from its path inside the schemas folder, so that
# relative `$ref`s in files without `$id` resolve against their location (JSON Schema 2020-12
# Core 9.1.1: the retrieval URI is the initial base). The host-less `file:` root is never read.
FILE_ROOT = "file:///"


@dataclass(frozen=True, slots=True)
class SchemaDocument:
    """One parsed schema file."""

    file: str  # as shown in problems: the schemas folder joined with `relative`
    relative: PurePosixPath  # path inside the schemas folder
    value: Any  # the schema: a dict or a bool
    located: yamlpos.Located

    @property
    def uri(self) -> str:
        """The file's own URI, the base of its relative references when it has no `$id`."""
        return FILE_ROOT + quote(self.relative.as_posix(), safe="/")

    @property
    def type(self) -> str | None:
        """The event type this file governs by its name; None for definitions-only files."""
        folders = self.relative.parts[:-1]
        if DEFINITIONS_FOLDER in folders or any(p.startswith("_") for p in self.relative.parts):
            return None
        return self.relative.name.rsplit(".", 1)[0]

    def line(self, path: tuple[str | int, ...]) -> int:
        return self.located.line(path)

    def problem(self, path: tuple[str | int, ...], message: str) -> Problem:
        return Problem(self.file, self.line(path), format_path(path), message)


def read_documents(folder: Path) -> tuple[list[SchemaDocument], list[Problem]]:
    """Parse every schema file under `folder`; a missing folder holds no schemas."""
    if not folder.exists():
        return [], []
    if not folder.is_dir():
        return [], [Problem(str(folder), 0, "", "the schemas path is not a folder")]
    documents: list[SchemaDocument] = []
    problems: list[Problem] = []
    for path in _schema_files(folder):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        shown = str(folder / relative)
        try:
            document = _parse(path, relative, shown)
        except _Unreadable as exc:
            problems.append(Problem(shown, exc.line, "", exc.message))
            continue
        bad = [document.problem(p, m) for p, m in _non_json_values(document.value, ())]
        if bad:
            problems.extend(bad)
            continue
        documents.append(document)
    return documents, problems


def _schema_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        hidden = any(p.startswith(".") for p in parts)
        if path.suffix.lower() in EXTENSIONS and not hidden and path.is_file():
            found.append(path)
    return sorted(found)


class _Unreadable(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _parse(path: Path, relative: PurePosixPath, shown: str) -> SchemaDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(0, f"not UTF-8 text: {exc.reason}") from exc
    except OSError as exc:
        raise _Unreadable(0, f"cannot read: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".json":
        # RFC 8259 numbers such as 1e6 are floats in JSON but strings in YAML 1.1: the value comes
        # from a JSON parser, and YAML only supplies the line of each key.
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise _Unreadable(exc.lineno, f"malformed JSON: {exc.msg}") from exc
        except ValueError as exc:
            raise _Unreadable(0, f"malformed JSON: {exc}") from exc
        try:
            located = yamlpos.load(text, shown)
        except yaml.YAMLError:
            located = yamlpos.Located(value, {})
    else:
        try:
            located = yamlpos.load(text, shown)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            reason = getattr(exc, "problem", None) or str(exc)
            raise _Unreadable(line, f"malformed YAML: {reason}") from exc
        value = located.value
    if value is None and not text.strip():
        raise _Unreadable(0, "empty file: a schema is an object or a boolean")
    if not isinstance(value, dict | bool):
        raise _Unreadable(1, "a schema must be an object or a boolean")
    return SchemaDocument(shown, relative, value, located)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _non_json_values(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """YAML values JSON cannot hold (timestamps, binary, NaN), which no schema may contain."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _non_json_values(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_json_values(item, (*path, index))
    elif isinstance(value, datetime.date):
        yield path, f"{value.isoformat()} is a YAML timestamp, not JSON: quote it"
    elif isinstance(value, float) and not math.isfinite(value):
        yield path, f"{value} is not a JSON number"
    elif not isinstance(value, str | int | float | bool) and value is not None:
        yield path, f"a YAML {type(value).__name__} is not a JSON value"
