"""Limits on the work one request may cause: JSON nesting depth, attribute sizes, error lists.

Every ingest path (binary, structured and batched mode, sources' JSON bodies and form payloads)
checks the JSON text it is about to parse with `check_depth` before parsing it, so no parser,
validator or renderer downstream ever meets deeper data. The limit applies to the event's
`data` (and to extension values): the envelope of a structured event, or of a batch and its
events, does not count, so one value is accepted or refused alike in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import InvalidEvent

# Deepest nesting of arrays and objects accepted in `data` (a scalar is depth 0, `[]` depth 1).
# Far above what events carry, far below what orjson (1024), orjson's encoder (255) and the
# validator's recursion allow.
MAX_DEPTH = 128
# Levels a message adds around `data`: a structured event is an object; a batch an array of them.
STRUCTURED_ENVELOPE = 1
BATCH_ENVELOPE = 2

# Defaults of `limits:` in gateway.yaml. Sizes are counted as a binary-mode delivery carries the
# attribute (`ce-<name>` header, value percent-encoded: CE HTTP binding 3.1.3.2), so that every
# event accepted fits the header limits of common HTTP servers (8 KB).
MAX_ATTRIBUTE_BYTES = 4096
MAX_ATTRIBUTES_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-event limits on context attributes (`limits:` in gateway.yaml)."""

    max_attribute_bytes: int = MAX_ATTRIBUTE_BYTES  # one value, as its header carries it
    max_attributes_bytes: int = MAX_ATTRIBUTES_BYTES  # every name plus value, together


# Everything but brackets and quotes is deleted; then opening brackets become "(", closing ")".
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")


def _deeper(brackets: bytes, limit: int) -> bool:
    """True when the bracket sequence nests deeper than `limit`: each pass removes the
    innermost pairs, so a sequence still holding pairs after `limit` passes is deeper."""
    for _ in range(limit):
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            return False  # empty, or unbalanced: the parser will say what is wrong
        brackets = shorter
    return b"()" in brackets


def _outside_strings(text: bytes) -> bytes:
    """The brackets of JSON text that are not inside a string (RFC 8259 7), in order."""
    if b"\\" in text:
        # Escaped backslashes first, then escaped quotes: what remains of the quotes delimits
        # strings. Nothing outside a string holds a backslash in valid JSON.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Quotes with no bracket between them delimit nothing that matters: drop them in pairs.
    reduced = text.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in reduced:
        reduced = b"".join(reduced.split(b'"')[::2])
    return reduced.translate(_BRACKETS)


def too_deep(text: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays and objects deeper than `limit` levels.

    Linear in the size of the text, done in C but for one step per level; texts with fewer
    opening brackets than the limit (nearly all events) are answered by two counts.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    return _deeper(_outside_strings(text), limit)


def check_depth(text: bytes, what: str, envelope: int = 0) -> None:
    """Refuse (400) JSON text whose data nests deeper than `MAX_DEPTH`, before it is parsed.
    `envelope` is the number of levels the message adds around the data."""
    if too_deep(text, MAX_DEPTH + envelope):
        raise InvalidEvent(
            f"{what} nests arrays and objects deeper than {MAX_DEPTH} levels, the limit"
        )
