"""What may be shown of a value outside the process: URLs without secrets, identifiers clipped.

`url` is the one redaction of sink URLs for display (log lines, dead-letter notices, stored
copies); `fingerprint` lets a stored form still tell whether a configured URL changed without
keeping the URL; `clip` bounds identifiers (event ids, sources, names) in log lines.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

MASK = "***"
CLIP = 128  # characters of an identifier shown in a log line
ELLIPSIS = "…"
_PREFIX = "scrypt"


def url(text: str) -> str:
    """`text` with the userinfo password (or a lone user name, often a token), every query
    value and the fragment masked. The rest is kept as written; masking twice changes nothing."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return MASK
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    if parts.query:
        shown += "?" + "&".join(_mask_item(item) for item in parts.query.split("&"))
    if parts.fragment:
        shown += "#" + MASK
    return shown


def _mask_item(item: str) -> str:
    key, eq, _ = item.partition("=")
    if not eq:
        return item if not item else MASK
    return f"{key}={MASK}"


def fingerprint(text: str) -> str:
    """A salted, slow hash of `text`: stored instead of a URL that must not be kept."""
    salt = secrets.token_bytes(16)
    return f"{_PREFIX}${salt.hex()}${_scrypt(text, salt).hex()}"


def _scrypt(text: str, salt: bytes) -> bytes:
    # scrypt makes guessing a short secret of the URL from a stored fingerprint costly.
    return hashlib.scrypt(text.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def matches(text: str, stored: str) -> bool:
    """True when `stored` is the `fingerprint` of `text`."""
    kind, _, rest = stored.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    if kind != _PREFIX:
        return False
    try:
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(text, salt), digest)


def clip(text: str, limit: int = CLIP) -> str:
    """An identifier as shown in a log line: control characters escaped, at most `limit`
    characters, a cut marked with an ellipsis."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text
