"""Standard Webhooks v1 signatures (HMAC-SHA256) on outgoing deliveries.

Errors never include the secret: it is configuration that must not reach logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

# Standard Webhooks, "Signature scheme": symmetric secrets are shown as whsec_ + base64.
SECRET_PREFIX = "whsec_"


@lru_cache(maxsize=256)
def decode_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; ValueError when it is not one.

    Unpadded base64 is accepted, as the reference libraries accept it.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :].rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a signing secret must be base64 after its prefix") from None
    if not key:
        raise ValueError("a signing secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` entry `v1,<base64>` for these exact body bytes."""
    # Standard Webhooks, "Signature scheme": HMAC-SHA256 over "{id}.{timestamp}.{body}".
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
