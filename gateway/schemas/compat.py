"""Schema compatibility for `gateway check --against <git-ref>`: what a schema edit breaks.

Each schema file is compared with its version at the ref. A change is *breaking* when events or
consumers that worked before may stop working: a property removed or made required, a type
narrowed, an enum value removed (or an enum/const imposed), `additionalProperties` closed, a
bound tightened (minimum, maximum, lengths, item counts), a pattern or format changed, a schema
file removed, or a `$ref` pointed at a target that differs in one of those ways. Everything else
that changed (a property added, a type widened, an enum value added, a bound loosened, a schema
added) is reported as information.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

from gateway.diagnostics import Problem, format_path
from gateway.schemas.documents import SchemaDocument, read_documents
from gateway.schemas.refs import normalize_id

JsonPath = tuple[str | int, ...]
# Lower bounds: raising one is breaking. Upper bounds: lowering one is breaking.
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


class GitError(Exception):
    """The ref or the repository could not be read."""


@dataclass(frozen=True, slots=True)
class _Side:
    """One version of one file, and where we are in it."""

    document: SchemaDocument
    base: str


class _Version:
    """All schema documents of one version, addressable by `$id` and by file URI."""

    def __init__(self, documents: list[SchemaDocument]) -> None:
        self.by_uri: dict[str, SchemaDocument] = {}
        for document in documents:
            self.by_uri[document.uri] = document
            if isinstance(document.value, dict) and isinstance(document.value.get("$id"), str):
                self.by_uri[normalize_id(urljoin(document.uri, document.value["$id"]))] = document

    def resolve(self, base: str, ref: str) -> tuple[Any, _Side, JsonPath] | None:
        target = urljoin(base, ref)
        uri, _, fragment = target.partition("#")
        document = self.by_uri.get(normalize_id(uri))
        if document is None:
            return None
        node: Any = document.value
        path: JsonPath = ()
        for token in [t for t in fragment.split("/") if t] if fragment.startswith("/") else []:
            key = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node, path = node[key], (*path, key)
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node, path = node[int(key)], (*path, int(key))
            else:
                return None
        return node, _Side(document, _base(document)), path


def _base(document: SchemaDocument) -> str:
    value = document.value
    ident = value.get("$id") if isinstance(value, dict) else None
    return urljoin(document.uri, ident) if isinstance(ident, str) else document.uri


def _types(schema: dict[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    found = {value} if isinstance(value, str) else {str(v) for v in value}
    if "number" in found:
        found.add("integer")  # JSON Schema: integer is a subset of number
    return found


class _Comparer:
    def __init__(self, old: _Version, new: _Version) -> None:
        self.old, self.new = old, new
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str, JsonPath]] = set()

    def report(self, side: _Side, path: JsonPath, message: str, breaking: bool) -> None:
        document = side.document
        severity = "error" if breaking else "info"
        prefix = "breaking change" if breaking else "compatible change"
        self.problems.append(
            Problem(
                document.file,
                document.line(path),
                format_path(path),
                f"{prefix}: {message}",
                severity,
            )
        )

    def compare(self, old: Any, new: Any, old_side: _Side, new_side: _Side, path: JsonPath) -> None:
        key = (old_side.document.uri, new_side.document.uri, path)
        if key in self._seen:
            return
        self._seen.add(key)
        if old is True and new is False:
            self.report(new_side, path, "the schema now rejects every value", True)
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
        if self._follow_refs(old, new, old_side, new_side, path):
            return
        self._type(old, new, new_side, path)
        self._values(old, new, new_side, path)
        self._bounds(old, new, new_side, path)
        self._objects(old, new, old_side, new_side, path)
        if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
            self.compare(old["items"], new["items"], old_side, new_side, (*path, "items"))
        for keyword in ("$defs", "definitions"):
            old_defs, new_defs = old.get(keyword), new.get(keyword)
            if isinstance(old_defs, dict) and isinstance(new_defs, dict):
                for name in old_defs.keys() & new_defs.keys():
                    at = (*path, keyword, name)
                    self.compare(old_defs[name], new_defs[name], old_side, new_side, at)

    def _follow_refs(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        old_side: _Side,
        new_side: _Side,
        path: JsonPath,
    ) -> bool:
        old_ref, new_ref = old.get("$ref"), new.get("$ref")
        if not isinstance(old_ref, str) and not isinstance(new_ref, str):
            return False
        if old_ref == new_ref:
            return True  # the target file is compared on its own
        old_target = self.old.resolve(old_side.base, old_ref) if isinstance(old_ref, str) else None
        new_target = self.new.resolve(new_side.base, new_ref) if isinstance(new_ref, str) else None
        if old_target is None or new_target is None:
            self.report(new_side, (*path, "$ref"), "the reference now points elsewhere", True)
            return True
        before = len(self.problems)
        self.compare(old_target[0], new_target[0], old_target[1], new_target[1], new_target[2])
        if any(p.is_error for p in self.problems[before:]):
            self.report(
                new_side,
                (*path, "$ref"),
                f"the reference now points at an incompatible schema ({new_ref})",
                True,
            )
        return True

    def _type(self, old: dict[str, Any], new: dict[str, Any], side: _Side, path: JsonPath) -> None:
        before, after = _types(old), _types(new)
        if before == after:
            return
        if after is not None and (before is None or before - after):
            shown = "any" if before is None else ", ".join(sorted(before))
            self.report(
                side,
                (*path, "type"),
                f"type narrowed from {shown} to {', '.join(sorted(after))}",
                True,
            )
        else:
            self.report(side, (*path, "type"), "type widened", False)

    def _values(
        self, old: dict[str, Any], new: dict[str, Any], side: _Side, path: JsonPath
    ) -> None:
        if "enum" in new and isinstance(new["enum"], list):
            if "enum" not in old:
                self.report(side, (*path, "enum"), "values restricted to an enum", True)
            else:
                removed = [v for v in old["enum"] if v not in new["enum"]]
                added = [v for v in new["enum"] if v not in old["enum"]]
                if removed:
                    self.report(side, (*path, "enum"), f"enum values removed: {removed}", True)
                if added:
                    self.report(side, (*path, "enum"), f"enum values added: {added}", False)
        elif "enum" in old:
            self.report(side, path, "enum restriction lifted", False)
        if "const" in new and old.get("const", object()) != new["const"]:
            self.report(side, (*path, "const"), "const added or changed", True)
        for keyword in ("pattern", "format"):
            if keyword in new and old.get(keyword) != new[keyword]:
                self.report(side, (*path, keyword), f"{keyword} added or changed", True)

    def _bounds(
        self, old: dict[str, Any], new: dict[str, Any], side: _Side, path: JsonPath
    ) -> None:
        for keyword, tighter in [(k, _raised) for k in _LOWER] + [(k, _lowered) for k in _UPPER]:
            if keyword not in new or old.get(keyword) == new[keyword]:
                continue
            if keyword not in old or tighter(old[keyword], new[keyword]):
                self.report(side, (*path, keyword), f"{keyword} tightened to {new[keyword]}", True)
            else:
                self.report(side, (*path, keyword), f"{keyword} loosened", False)

    def _objects(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        old_side: _Side,
        new_side: _Side,
        path: JsonPath,
    ) -> None:
        old_props = _mapping(old.get("properties"))
        new_props = _mapping(new.get("properties"))
        for name in old_props:
            if name not in new_props:
                at = (*path, "properties") if "properties" in new else path
                self.report(new_side, at, f"property '{name}' removed", True)
        for name in new_props:
            if name not in old_props:
                self.report(
                    new_side, (*path, "properties", name), f"property '{name}' added", False
                )
            else:
                at = (*path, "properties", name)
                self.compare(old_props[name], new_props[name], old_side, new_side, at)
        old_required = set(old.get("required") or ())
        for name in new.get("required") or ():
            if name not in old_required:
                self.report(new_side, (*path, "required"), f"property '{name}' made required", True)
        if old.get("additionalProperties", True) is not False and (
            new.get("additionalProperties", True) is False
        ):
            self.report(
                new_side, (*path, "additionalProperties"), "additionalProperties closed", True
            )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _raised(before: Any, after: Any) -> bool:
    return isinstance(before, int | float) and isinstance(after, int | float) and after > before


def _lowered(before: Any, after: Any) -> bool:
    return isinstance(before, int | float) and isinstance(after, int | float) and after < before


def compare_folders(old_folder: Path, new_folder: Path) -> list[Problem]:
    """Every change between two schema folders, as problems (errors are breaking changes)."""
    old_docs, _ = read_documents(old_folder)
    new_docs, problems = read_documents(new_folder)
    comparer = _Comparer(_Version(old_docs), _Version(new_docs))
    old_by_path = {d.relative: d for d in old_docs}
    new_by_path = {d.relative: d for d in new_docs}
    for relative, new in sorted(new_by_path.items()):
        old = old_by_path.get(relative)
        side = _Side(new, _base(new))
        if old is None:
            comparer.report(side, (), "new schema file", False)
            continue
        comparer.compare(old.value, new.value, _Side(old, _base(old)), side, ())
    for relative, old in sorted(old_by_path.items()):
        if relative not in new_by_path:
            what = f"type {old.type}" if old.type else "definitions"
            problems.append(
                Problem(
                    str(new_folder / relative),
                    0,
                    "",
                    f"breaking change: schema file removed ({what})",
                )
            )
    return sorted(set(problems + comparer.problems))


def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git could not run: {exc}") from exc
    if done.returncode != 0:
        raise GitError(done.stderr.decode("utf-8", "replace").strip() or "git failed")
    return done.stdout


def _files_at(ref: str, folder: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    top = Path(_git(folder, "rev-parse", "--show-toplevel").decode().strip())
    inside = PurePosixPath(folder.resolve().relative_to(top.resolve()).as_posix())
    listing = _git(top, "ls-tree", "-r", "--name-only", "-z", ref, "--", str(inside))
    for name in filter(None, listing.decode().split("\0")):
        path = PurePosixPath(name)
        yield path.relative_to(inside), _git(top, "show", f"{ref}:{name}")


def against(ref: str, folder: Path) -> list[Problem]:
    """Compare the schemas folder with its content at a git ref (no network involved)."""
    # git's own message when the ref does not resolve ("fatal: bad revision 'x'").
    _git(folder, "log", "-1", "--format=%H", "--end-of-options", ref, "--")
    _git(folder, "rev-parse", "--verify", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="schemas-at-ref-") as tmp:
        old_folder = Path(tmp)
        for relative, content in _files_at(ref, folder):
            target = old_folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return compare_folders(old_folder, folder)
