"""Finding and reading configuration files: folders, lists of files and globs, YAML with lines.

Paths in messages are shown as the user gave them (relative to the current directory when
possible), so `config/subscriptions/billing.yaml:14: ...` reads like the contract says.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.config import fields as f
from gateway.config.expand import Parts, expand
from gateway.config.fields import Source
from gateway.diagnostics import Problem
from gateway.yamlpos import Located, load

YAML_SUFFIXES = (".yaml", ".yml")
_GLOB = frozenset("*?[")


def display(path: Path) -> str:
    """`path` as shown in messages: relative to the current directory when it is inside it."""
    if path.is_absolute():
        try:
            return os.path.normpath(path.relative_to(Path.cwd()))
        except (ValueError, OSError):
            return os.path.normpath(path)
    return os.path.normpath(path)


def join(base: Path, relative: str) -> Path:
    """`relative` taken from `base` (an absolute `relative` stays as it is), normalized."""
    return Path(os.path.normpath(base / relative))


def read(path: Path, env: Mapping[str, str]) -> tuple[Source, bool]:
    """Parse and expand one YAML file; False (with the problem in the source) when unreadable."""
    src = Source(display(path), Located(None, {}))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        src.problems.append(Problem(src.file, 0, "", "file not found"))
        return src, False
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        src.problems.append(Problem(src.file, 0, "", f"cannot read: {reason}"))
        return src, False
    try:
        located = load(text, src.file)
    except yaml.YAMLError as exc:
        src.problems.append(_yaml_problem(src.file, exc))
        return src, False
    src.located = located
    value, src.expanded = expand(located.value, env, src.report)
    src.located = Located(value, located.lines)
    return src, True


def _yaml_problem(file: str, exc: yaml.YAMLError) -> Problem:
    # The text of a YAMLError quotes the offending line, which may hold a secret: use its parts.
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 0
    reason = getattr(exc, "problem", None) or getattr(exc, "context", None) or "malformed"
    return Problem(file, line, "", f"invalid YAML: {reason}")


def top(src: Source, key: str) -> Any:
    """The value under the single top-level `key` of a subscriptions/sources file."""
    document = src.located.value
    if document is None:
        return None
    raw = f.mapping(src, document, ())
    if raw is None:
        return None
    f.check_keys(src, raw, (), (key,))
    return raw.get(key)


def discover(src: Source, value: Any, parts: Parts, base: Path) -> list[Path]:
    """The YAML files named by a `subscriptions`/`sources` value: a folder (a missing folder is
    empty), or a list of files, folders and globs (an entry that matches nothing is a problem)."""
    if value is None:
        return []
    if isinstance(value, str) and not value:
        src.report(parts, "must not be empty")
        return []
    if isinstance(value, str):
        target = join(base, value)
        if target.is_dir() or not (_GLOB & set(value) or target.suffix in YAML_SUFFIXES):
            return _folder(target)
        entries: list[Any] = [value]
        at: list[Parts] = [parts]
    else:
        items = f.sequence(src, value, parts)
        if items is None:
            return []
        entries = items
        at = [(*parts, i) for i in range(len(items))]
    found: list[Path] = []
    for entry, where in zip(entries, at, strict=True):
        pattern = f.string(src, entry, where)
        if pattern is None:
            continue
        matched = _matches(join(base, pattern), pattern)
        if not matched:
            src.report(where, "matches no file")
        found.extend(p for p in matched if p not in found)
    return found


def _matches(target: Path, pattern: str) -> list[Path]:
    if target.is_dir():
        return _folder(target)
    if _GLOB & set(pattern):
        hits = sorted(glob.glob(str(target), recursive=True))
        return [Path(h) for h in hits if Path(h).is_file()]
    return [target] if target.is_file() else []


def _folder(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in YAML_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
