"""How a source's requests may be verified: the kinds of `verify` and their options."""

from __future__ import annotations

import base64
import binascii
import hashlib

KINDS = ("hmac", "token", "bearer", "basic", "stripe", "standard-webhooks", "none")
ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
ENCODINGS = ("hex", "base64")
# Standard Webhooks 1.0 (and its library): timestamps within 5 minutes either way.
STANDARD_WEBHOOKS_TOLERANCE = 300.0


def is_standard_webhooks_secret(secret: str) -> bool:
    """`whsec_` followed by non-empty base64 (Standard Webhooks 1.0, symmetric keys)."""
    if not secret.startswith("whsec_"):
        return False
    encoded = secret[len("whsec_") :]
    try:
        return bool(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
    except (ValueError, binascii.Error):
        return False
