"""LIKE patterns (spec 3.4.3), compiled once into a plain predicate on strings.

`%` matches any run of characters, `_` exactly one, `\\%` and `\\_` the character itself
(`\\\\` a backslash; a backslash before anything else is literal). Matching splits the pattern
at its `%` into fixed-length segments placed leftmost-first, so it takes at most
O(len(text) * len(pattern)) even for patterns such as `%a%a%a%b` (no regex backtracking).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Predicate = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class _Segment:
    """A run between two `%`: literal text, or a regex when it holds `_` wildcards."""

    text: str
    length: int
    regex: re.Pattern[str] | None

    def at(self, subject: str, pos: int) -> bool:
        if self.regex is None:
            return subject.startswith(self.text, pos)
        return self.regex.match(subject, pos, pos + self.length) is not None

    def find(self, subject: str, start: int, end: int) -> int:
        if self.regex is None:
            return subject.find(self.text, start, end)
        found = self.regex.search(subject, start, end)
        return -1 if found is None else found.start()


def _segments(pattern: str) -> list[list[str | None]]:
    """The pattern split at unescaped `%`; in each segment None stands for `_`."""
    segments: list[list[str | None]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n and pattern[i + 1] in "%_\\":
            segments[-1].append(pattern[i + 1])
            i += 2
            continue
        if c == "%":
            segments.append([])
        else:
            segments[-1].append(None if c == "_" else c)
        i += 1
    return segments


def _segment(items: list[str | None]) -> _Segment:
    if None not in items:
        text = "".join(items)  # type: ignore[arg-type]
        return _Segment(text, len(text), None)
    source = "".join("." if item is None else re.escape(item) for item in items)
    return _Segment("", len(items), re.compile(source, re.DOTALL))


def shape(pattern: str) -> tuple[str, str] | None:
    """The common simple patterns as ("exact" | "prefix" | "suffix" | "contains", text), for
    callers that inline the test; None for any other pattern."""
    segments = [_segment(items) for items in _segments(pattern)]
    if not all(s.regex is None for s in segments):
        return None
    texts = [s.text for s in segments]
    if len(texts) == 1:
        return ("exact", texts[0])
    if len(texts) == 2 and not texts[1]:
        return ("prefix", texts[0])
    if len(texts) == 2 and not texts[0]:
        return ("suffix", texts[1])
    if len(texts) == 3 and not texts[0] and not texts[2]:
        return ("contains", texts[1])
    return None


def compile_pattern(pattern: str) -> Predicate:
    """A predicate telling whether a string matches the LIKE pattern."""
    simple = shape(pattern)
    if simple is not None:
        kind, text = simple
        if kind == "exact":
            return text.__eq__
        if kind == "prefix":
            return lambda s: s.startswith(text)
        if kind == "suffix":
            return lambda s: s.endswith(text)
        return lambda s: text in s
    segments = [_segment(items) for items in _segments(pattern)]
    if len(segments) == 1:
        only = segments[0]
        return lambda s: len(s) == only.length and only.at(s, 0)
    return _general(segments)


def _general(segments: list[_Segment]) -> Predicate:
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    fixed = sum(s.length for s in segments)

    def match(subject: str) -> bool:
        if len(subject) < fixed or not first.at(subject, 0):
            return False
        end = len(subject) - last.length
        if not last.at(subject, end):
            return False
        pos = first.length
        for segment in middle:
            found = segment.find(subject, pos, end)
            if found < 0:
                return False
            pos = found + segment.length
        return True

    return match
