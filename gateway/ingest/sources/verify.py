"""Verification of a source's requests, on the raw body bytes, before anything else is read.

Kinds: `hmac` (a keyed hash of the body, or of a `signed` template such as
`{timestamp}.{body}`, in a header; optionally with a signed timestamp checked against a
tolerance to refuse replays), `token` (a header equal to the secret), `bearer`, `basic`,
`stripe` (Stripe-Signature `t=...,v1=...`) and `standard-webhooks`. Every comparison is
constant-time and every configured secret is tried (rotation: any one verifies). A refusal is an
`Unauthorized` whose detail names the header and the reason, never a secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping

from standardwebhooks import Webhook

from gateway.config.model import Verify
from gateway.errors import Unauthorized
from gateway.sources.kinds import ALGORITHMS, STANDARD_WEBHOOKS_TOLERANCE
from gateway.sources.templates import BODY, TIMESTAMP, Template

STRIPE_HEADER = "stripe-signature"
_STANDARD_WEBHOOKS_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

Headers = Mapping[str, str]  # lower-case names


def _any_equal(presented: bytes, candidates: list[bytes]) -> bool:
    # Compare against every candidate so timing does not reveal which one matched.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(presented, candidate)
    return found


def _header(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise Unauthorized(f"the header {name} is missing")
    return value


def _timestamp(raw: str, spec: Verify, now: float, what: str) -> None:
    try:
        at = float(raw.strip())
    except ValueError:
        raise Unauthorized(f"{what} is not a Unix time in seconds") from None
    if not abs(now - at) <= spec.tolerance:
        raise Unauthorized(
            f"{what} is more than {spec.tolerance:g}s away from now: the request is refused "
            "as a possible replay"
        )


def signed_bytes(template: Template | None, body: bytes, headers: Headers, timestamp: str) -> bytes:
    """The bytes an HMAC covers: the raw body, or a `signed` template with the raw body inside."""
    if template is None:
        return body
    out: list[bytes] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part.encode("utf-8"))
        elif part.root == BODY:
            out.append(body)
        elif part.root == TIMESTAMP:
            out.append(timestamp.encode("utf-8"))
        else:
            out.append(headers.get(part.path[0], "").encode("utf-8", "surrogateescape"))
    return b"".join(out)


def _decode(signature: str, encoding: str) -> bytes:
    try:
        if encoding == "hex":
            return bytes.fromhex(signature.strip())
        return base64.b64decode(signature.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise Unauthorized(f"the signature is not valid {encoding}") from None


def _strip(value: str, prefix: str, header: str) -> str:
    if not value.startswith(prefix):
        raise Unauthorized(f"the header {header} does not start with the expected prefix")
    return value[len(prefix) :]


def _hmac(spec: Verify, body: bytes, headers: Headers, _query: Headers, now: float) -> None:
    signature = _strip(_header(headers, spec.header), spec.prefix, spec.header)
    presented = _decode(signature, spec.encoding)
    timestamp = ""
    if spec.timestamp_header is not None:
        timestamp = _header(headers, spec.timestamp_header)
        _timestamp(timestamp, spec, now, f"the timestamp in {spec.timestamp_header}")
    message = signed_bytes(spec.signed, body, headers, timestamp)
    digest = ALGORITHMS[spec.algorithm]
    expected = [hmac.new(s.encode("utf-8"), message, digest).digest() for s in spec.secrets]
    if not _any_equal(presented, expected):
        raise Unauthorized(f"the signature in {spec.header} does not match")


def _token(spec: Verify, _body: bytes, headers: Headers, _query: Headers, _now: float) -> None:
    presented = _strip(_header(headers, spec.header), spec.prefix, spec.header)
    if not _any_equal(presented.encode("utf-8", "surrogateescape"), _secrets(spec)):
        raise Unauthorized(f"the token in {spec.header} is not valid")


def _secrets(spec: Verify) -> list[bytes]:
    return [s.encode("utf-8") for s in spec.secrets]


_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gateway"'}
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="gateway", charset="UTF-8"'}


def _credentials(headers: Headers, scheme: str) -> str | None:
    auth = headers.get("authorization", "")
    given, _, value = auth.partition(" ")
    return value.strip() if given.lower() == scheme and value.strip() else None


def _bearer(spec: Verify, _body: bytes, headers: Headers, query: Headers, _now: float) -> None:
    # CE webhook spec 3: the Authorization header, or the access_token query parameter.
    token = _credentials(headers, "bearer")
    if token is None and "authorization" not in headers:
        token = query.get("access_token") or None
    if token is None:
        raise Unauthorized("a bearer token is required", headers=_BEARER_CHALLENGE)
    if not _any_equal(token.encode("utf-8", "surrogateescape"), _secrets(spec)):
        raise Unauthorized("the bearer token is not valid", headers=_BEARER_CHALLENGE)


def _basic(spec: Verify, _body: bytes, headers: Headers, _query: Headers, _now: float) -> None:
    # RFC 7617: base64 of "user-id:password", UTF-8.
    encoded = _credentials(headers, "basic")
    if encoded is None:
        raise Unauthorized("basic credentials are required", headers=_BASIC_CHALLENGE)
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).partition(b":")
    except (ValueError, binascii.Error):
        user, colon, password = b"", b"", b""
    wanted = (spec.username or "").encode("utf-8")
    user_ok = hmac.compare_digest(user, wanted) if spec.username is not None else True
    if not (_any_equal(password, _secrets(spec)) and user_ok and colon):
        raise Unauthorized("the basic credentials are not valid", headers=_BASIC_CHALLENGE)


def _stripe(spec: Verify, body: bytes, headers: Headers, _query: Headers, now: float) -> None:
    # Stripe: `t=<unix>,v1=<hex>[,v1=...]`; v1 = HMAC-SHA256(secret, "<t>.<raw body>").
    header = spec.header or STRIPE_HEADER
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in _header(headers, header).split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not signatures:
        raise Unauthorized(f"the header {header} needs one t= and at least one v1= signature")
    _timestamp(timestamps[0], spec, now, f"the timestamp in {header}")
    message = timestamps[0].encode("ascii", "replace") + b"." + body
    expected = [hmac.new(s.encode("utf-8"), message, hashlib.sha256).digest() for s in spec.secrets]
    found = False
    for signature in signatures:
        try:
            presented = bytes.fromhex(signature)
        except ValueError:
            continue
        found |= _any_equal(presented, expected)
    if not found:
        raise Unauthorized(f"no v1 signature in {header} matches")


def _standard_webhooks(
    spec: Verify, body: bytes, headers: Headers, _query: Headers, now: float
) -> None:
    # Standard Webhooks 1.0: v1 = HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>").
    present = {name: _header(headers, name) for name in _STANDARD_WEBHOOKS_HEADERS}
    checked = Verify(tolerance=min(spec.tolerance, STANDARD_WEBHOOKS_TOLERANCE))
    _timestamp(present["webhook-timestamp"], checked, now, "the timestamp in webhook-timestamp")
    found = False
    for secret in spec.secrets:
        try:
            Webhook(secret).verify(body, present, json_parse=False)
            found = True
        except Exception:
            continue
    if not found:
        raise Unauthorized("no signature in webhook-signature matches")


def _none(_spec: Verify, _body: bytes, _headers: Headers, _query: Headers, _now: float) -> None:
    return None


_CHECKS: dict[str, Callable[[Verify, bytes, Headers, Headers, float], None]] = {
    "hmac": _hmac,
    "token": _token,
    "bearer": _bearer,
    "basic": _basic,
    "stripe": _stripe,
    "standard-webhooks": _standard_webhooks,
    "none": _none,
}


def check(spec: Verify, body: bytes, headers: Headers, query: Headers, now: float) -> None:
    """Raise `Unauthorized` unless the request carries valid credentials for `spec`.

    `headers` has lower-case names; `now` is Unix seconds (for timestamp tolerances).
    """
    _CHECKS[spec.kind](spec, body, headers, query, now)
