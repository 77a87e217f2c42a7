"""Typed readers for configuration values: each checks one value and reports a problem if wrong.

Every reader takes the `Source` of the file being read, the raw value and its key path, and
returns the converted value or None after reporting a problem. A value left `UNRESOLVED` by
variable expansion was already reported, so readers return None for it silently. Messages never
quote a value (it may hold a secret), only keys and allowed choices.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway import sinkurl
from gateway.config import spec
from gateway.config.durations import parse_duration
from gateway.config.expand import UNRESOLVED, Parts
from gateway.diagnostics import Problem, format_path
from gateway.yamlpos import Located

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_N = TypeVar("_N", int, float)


@dataclass
class Source:
    """One configuration file being read, and the problems found in it so far."""

    file: str  # as shown in messages
    located: Located
    expanded: set[Parts] = field(default_factory=set)  # paths whose string came from ${...}
    problems: list[Problem] = field(default_factory=list)

    def report(self, parts: Parts, message: str) -> None:
        self.problems.append(
            Problem(self.file, self.located.line(parts), format_path(parts), message)
        )


def check_keys(src: Source, mapping: dict[str, Any], parts: Parts, known: Collection[str]) -> None:
    """Report every key of `mapping` that is not in `known`, with the closest known key."""
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            src.report((*parts, key), f"unknown key '{key}'{hint}")


def section(src: Source, value: Any, parts: Parts, known: Collection[str]) -> dict[str, Any]:
    """An optional mapping of settings: null counts as empty; unknown keys are reported."""
    if value is None:
        return {}
    raw = mapping(src, value, parts)
    if raw is None:
        return {}
    check_keys(src, raw, parts, known)
    return raw


def mapping(src: Source, value: Any, parts: Parts) -> dict[str, Any] | None:
    if value is UNRESOLVED:
        return None
    if not isinstance(value, dict):
        src.report(parts, "must be a mapping")
        return None
    return value


def sequence(src: Source, value: Any, parts: Parts) -> list[Any] | None:
    if value is UNRESOLVED:
        return None
    if not isinstance(value, list):
        src.report(parts, "must be a list")
        return None
    return value


def string(src: Source, value: Any, parts: Parts) -> str | None:
    """A non-empty string."""
    if value is UNRESOLVED:
        return None
    if not isinstance(value, str):
        src.report(parts, "must be a string")
        return None
    if not value:
        src.report(parts, "must not be empty")
        return None
    return value


def strings(src: Source, value: Any, parts: Parts) -> tuple[str, ...] | None:
    """A list of non-empty strings."""
    items = sequence(src, value, parts)
    if items is None:
        return None
    out = [string(src, item, (*parts, i)) for i, item in enumerate(items)]
    return tuple(s for s in out if s is not None) if None not in out else None


def integer(
    src: Source, value: Any, parts: Parts, minimum: int, maximum: int | None = None
) -> int | None:
    if value is UNRESOLVED:
        return None
    if isinstance(value, str) and parts in src.expanded and _INTEGER.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        src.report(parts, "must be an integer")
        return None
    return _within(src, value, parts, minimum, maximum)


def number(src: Source, value: Any, parts: Parts, minimum: float, maximum: float) -> float | None:
    if value is UNRESOLVED:
        return None
    if isinstance(value, str) and parts in src.expanded and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        src.report(parts, "must be a number")
        return None
    return _within(src, float(value), parts, minimum, maximum)


def _within(src: Source, value: _N, parts: Parts, low: _N, high: _N | None) -> _N | None:
    if value < low:
        src.report(parts, f"must be >= {low}")
        return None
    if high is not None and value > high:
        src.report(parts, f"must be <= {high}")
        return None
    return value


def duration(src: Source, value: Any, parts: Parts, *, positive: bool = False) -> float | None:
    """`250ms`, `10s`, `5m`, `2h`, `1d` or a number of seconds; > 0 when `positive`."""
    if value is UNRESOLVED:
        return None
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if math.isfinite(value) and value >= 0 else None
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            seconds = None
    if seconds is None:
        src.report(parts, "must be a duration like 10s")
        return None
    if positive and seconds <= 0:
        src.report(parts, "must be > 0")
        return None
    return seconds


def choice(src: Source, value: Any, parts: Parts, choices: Iterable[str]) -> str | None:
    options = tuple(choices)
    if value is UNRESOLVED:
        return None
    if not isinstance(value, str) or value not in options:
        src.report(parts, f"must be one of: {', '.join(options)}")
        return None
    return value


def http_url(src: Source, value: Any, parts: Parts) -> str | None:
    """A sink URL the sender will post to (`gateway.sinkurl`, the sender's own parser)."""
    text = string(src, value, parts)
    if text is None:
        return None
    try:
        url = sinkurl.parse(text)
    except sinkurl.InvalidSink as exc:
        src.report(parts, str(exc))
        return None
    extra = sinkurl.missing_extra(url.scheme)
    if extra is not None:
        src.report(
            parts,
            f"{url.scheme}:// sinks need the '{extra}' extra: "
            f"pip install 'cloudevents-gateway[{extra}]'",
        )
        return None
    return text


def scalar(src: Source, node: spec.Node, value: Any, parts: Parts) -> Any:
    """A plain value read by the kind and limits `gateway.config.spec` gives it."""
    match node:
        case spec.Integer(minimum=low, maximum=high):
            return integer(src, value, parts, 0 if low is None else low, high)
        case spec.Number(minimum=low, maximum=high):
            return number(src, value, parts, low, high)
        case spec.Duration(positive=positive):
            return duration(src, value, parts, positive=positive)
        case spec.Choice(options=options):
            return choice(src, value, parts, options)
        case spec.Url():
            return http_url(src, value, parts)
        case spec.Text():
            return string(src, value, parts)
    raise TypeError(f"{format_path(parts)} is not a plain value: {node!r}")
