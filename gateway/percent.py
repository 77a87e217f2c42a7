"""Percent-encoding of binary-mode header values (CE HTTP binding 3.1.3.2)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from gateway.errors import InvalidEvent

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# CE HTTP binding 3.1.3.2: MUST encode space, '"', '%' and everything outside printable ASCII
# U+0021..U+007E; the rest stays as it is. Runs of such characters are found in C.
_MUST_ENCODE = re.compile(r"[^\x21\x23\x24\x26-\x7e]+")


def _escape(run: re.Match[str]) -> str:
    return "%" + run.group().encode("utf-8").hex("%").upper()


def encode(value: str) -> str:
    """Percent-encode a canonical attribute string for an HTTP header, upper-case hex."""
    return _MUST_ENCODE.sub(_escape, value)


def _unquote_quoted_string(raw: str) -> str:
    # RFC 7230 3.2.6 quoted-string: DQUOTE *( qdtext / quoted-pair ) DQUOTE
    inner = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            if i + 1 >= len(inner):
                raise InvalidEvent("header value has a dangling backslash in a quoted-string")
            out.append(inner[i + 1])
            i += 2
            continue
        if ch == '"':
            raise InvalidEvent("header value has an unescaped quote inside a quoted-string")
        out.append(ch)
        i += 1
    return "".join(out)


def decode(raw: str) -> str:
    """Decode a header value: unescape a quoted-string, then one round of percent-decoding.

    Lower-case hex and needless escapes are accepted; invalid UTF-8 (e.g. the overlong
    `%C0%A0`) and malformed escapes raise `InvalidEvent`. Raw non-ASCII characters (from
    senders that do not encode) are taken as they are.
    """
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        raw = _unquote_quoted_string(raw)
    if "%" not in raw and raw.isascii():
        return raw
    bad = _BAD_ESCAPE.search(raw)
    if bad is not None:
        raise InvalidEvent(f"header value has an invalid percent-escape at offset {bad.start()}")
    # Raw bytes that were not valid UTF-8 reach us as surrogate escapes (how aiohttp decodes
    # header bytes); turning them back into bytes lets the strict UTF-8 decode reject them.
    try:
        return unquote_to_bytes(raw.encode("utf-8", "surrogateescape")).decode("utf-8")
    except UnicodeError as exc:
        raise InvalidEvent("header value is not valid UTF-8 after percent-decoding") from exc
