"""Who may publish: the configured producers, known by a client certificate or a bearer token,
and the source/type globs each may publish.

CE webhook spec 3: a token arrives as `Authorization: Bearer <token>` or, where headers are
impossible, as the `access_token` query parameter. With mutual TLS, a verified client
certificate whose common name is a producer's `client_cn` names that producer.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace
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


def peer_common_name(peercert: object) -> str | None:
    """The commonName of a verified peer certificate as `ssl` reports it (`getpeercert()`)."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def authenticate(
    producers: Sequence[Producer],
    headers: Mapping[str, str],
    query: Mapping[str, str],
    common_name: str | None = None,
) -> Producer | None:
    """The producer presenting a known certificate or token; None when there are no producers."""
    if not producers:
        return None
    if common_name is not None:
        for producer in producers:
            if producer.client_cn is not None and producer.client_cn == common_name:
                return producer
    token = _token(headers, query)
    if token is None:
        raise Unauthorized("a bearer token is required to publish", headers=_CHALLENGE)
    # Header bytes that are not UTF-8 arrive as surrogate escapes (aiohttp): they are bytes
    # that match no configured token, not a fault of the gateway.
    try:
        presented = token.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise Unauthorized("the bearer token is not valid", headers=_CHALLENGE) from None
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
        raise Forbidden(
            f"producer {producer.name!r} may not publish source {event.source!r} "
            "(attribute 'source' is outside its globs)"
        )
    if producer.types and not any(fnmatchcase(event.type, g) for g in producer.types):
        raise Forbidden(
            f"producer {producer.name!r} may not publish type {event.type!r} "
            "(attribute 'type' is outside its globs)"
        )


def stamp(event: Event, attribute: str | None, producer: Producer | None) -> Event:
    """Set the configured extension attribute to the producer's name (replacing any value the
    producer sent itself, so that it cannot be forged)."""
    if attribute is None or producer is None:
        return event
    return replace(event, attributes={**event.attributes, attribute: producer.name})
