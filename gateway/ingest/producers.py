"""Who may publish: bearer tokens of the configured producers and their source/type globs.

CE webhook spec 3: a token arrives as `Authorization: Bearer <token>` or, where headers are
impossible, as the `access_token` query parameter.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from gateway.config.model import Producer
from gateway.errors import Forbidden, Unauthorized
from gateway.event import Event

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gateway"'}


def _token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("Authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return query.get("access_token") or None


def authenticate(
    producers: Sequence[Producer], headers: Mapping[str, str], query: Mapping[str, str]
) -> Producer | None:
    """The producer presenting a known token; None when no producers are configured."""
    if not producers:
        return None
    token = _token(headers, query)
    if token is None:
        raise Unauthorized("a bearer token is required to publish", headers=_CHALLENGE)
    presented = token.encode()
    found: Producer | None = None
    for producer in producers:
        for known in producer.tokens:
            # Compare against every token so timing does not reveal which one matched.
            if hmac.compare_digest(presented, known.encode()):
                found = producer
    if found is None:
        raise Unauthorized("the bearer token is not valid", headers=_CHALLENGE)
    return found


def authorize(producer: Producer | None, event: Event) -> None:
    """Refuse an event whose source or type the producer may not publish."""
    if producer is None:
        return
    if producer.sources and not any(fnmatchcase(event.source, g) for g in producer.sources):
        raise Forbidden(f"producer {producer.name!r} may not publish source {event.source!r}")
    if producer.types and not any(fnmatchcase(event.type, g) for g in producer.types):
        raise Forbidden(f"producer {producer.name!r} may not publish type {event.type!r}")
