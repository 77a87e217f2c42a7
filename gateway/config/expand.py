"""`${VAR}` and `${VAR:-default}` expansion in every string value of a loaded YAML document.

`$${` is an escape for a literal `${`. `${VAR:-default}` uses the default when VAR is unset or
empty, as POSIX shells do. Keys are never expanded. A reference that cannot be resolved is
reported once and its value replaced by `UNRESOLVED`, which the field readers skip silently so
that one missing variable yields one problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Parts = tuple[str | int, ...]
Report = Callable[[Parts, str], None]


class _Unresolved:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNRESOLVED"


UNRESOLVED: Any = _Unresolved()

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand(
    value: Any, env: Mapping[str, str], report: Report, parts: Parts = ()
) -> tuple[Any, set[Parts]]:
    """A copy of `value` with every string expanded, and the paths whose string was expanded."""
    expanded: set[Parts] = set()
    return _walk(value, env, report, parts, expanded), expanded


def contains_unresolved(value: Any) -> bool:
    if value is UNRESOLVED:
        return True
    if isinstance(value, dict):
        return any(contains_unresolved(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unresolved(v) for v in value)
    return False


def _walk(value: Any, env: Mapping[str, str], report: Report, parts: Parts, out: set[Parts]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, env, report, (*parts, k), out) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env, report, (*parts, i), out) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        result = _expand_string(value, env, report, parts)
        if result is not UNRESOLVED:
            out.add(parts)
        return result
    return value


def _expand_string(text: str, env: Mapping[str, str], report: Report, parts: Parts) -> Any:
    pieces: list[str] = []
    pos = 0
    for token in _TOKEN.finditer(text):
        pieces.append(text[pos : token.start()])
        pos = token.end()
        if token.group(0) == "$${":
            pieces.append("${")
            continue
        body = token.group("body")
        if body is None:
            report(parts, "'${' without a closing '}'")
            return UNRESOLVED
        ref = _BODY.fullmatch(body)
        if ref is None or "${" in body:
            report(parts, "invalid variable reference: write ${NAME} or ${NAME:-default}")
            return UNRESOLVED
        name, default = ref.group("name"), ref.group("default")
        current = env.get(name)
        if default is not None and not current:
            pieces.append(default)
        elif current is not None:
            pieces.append(current)
        else:
            report(parts, f"environment variable {name} is not set (and has no default)")
            return UNRESOLVED
    pieces.append(text[pos:])
    return "".join(pieces)
