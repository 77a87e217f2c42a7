"""A stored event as the HTTP request a subscriber receives: binary, structured, batch, dead letter.

Rendering is pure: it takes an `Event` and returns headers and body bytes. The event leaves
unchanged: attributes keep their received types and values, binary data keeps its bytes, and
JSON data is embedded as stored, without being parsed again.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway import redact
from gateway.config.model import Mode, Subscription
from gateway.event import AttributeValue, DataKind, Event, canonical
from gateway.percent import encode
from gateway.store.base import Attempt, DeadLetterInfo, Kind, Leased

# CONTRACT 4: this exact spelling; some SDKs' parsers accept no other.
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
# CE JSON format 3.1: an absent datacontenttype means JSON; a target SHOULD say so explicitly.
IMPLIED_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Request:
    """The headers and body of one delivery request (the sender adds transport headers)."""

    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of a header, matched case-insensitively; None when absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


def binary(event: Event) -> Request:
    """Binary content mode (CE HTTP binding 3.1)."""
    headers: list[tuple[str, str]] = []
    content_type = event.datacontenttype
    # CE HTTP binding 3.1.1: datacontenttype maps to Content-Type, never to ce-datacontenttype.
    if content_type is None and event.kind in (DataKind.JSON, DataKind.TEXT):
        content_type = IMPLIED_CONTENT_TYPE
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    for name, value in event.attributes.items():
        if name != "datacontenttype":
            # CE HTTP binding 3.1.3: ce-<name>; 3.1.3.2: canonical string, percent-encoded.
            headers.append(("ce-" + name, encode(canonical(value))))
    # CE HTTP binding 3.1.2: the body is the data, byte for byte.
    body = b"" if event.kind is DataKind.NONE or event.data is None else event.data
    return Request(tuple(headers), body)


def structured(event: Event, extra: Mapping[str, AttributeValue] | None = None) -> Request:
    """Structured content mode with the JSON format (CE HTTP binding 3.2, JSON format 3)."""
    body = orjson.dumps(_json_object(event, extra))
    return Request((("Content-Type", STRUCTURED_CONTENT_TYPE),), body)


def batch(events: Iterable[Event]) -> Request:
    """Batched content mode (CE HTTP binding 3.3, JSON format 4): a JSON array of events."""
    body = orjson.dumps([_json_object(event, None) for event in events])
    return Request((("Content-Type", BATCH_CONTENT_TYPE),), body)


def dead_letter_info(
    sub: Subscription, row: Leased, reason: str, attempt: Attempt | None
) -> DeadLetterInfo:
    """What a dead letter says (CONTRACT 4): a DEAD_LETTER row keeps what it was queued with;
    otherwise the reason, the status of `attempt` (None: this attempt was not made, nor
    counted) and the sink, redacted."""
    if row.dead_letter is not None:
        return row.dead_letter
    status, made = (None, row.attempt - 1) if attempt is None else (attempt.status, row.attempt)
    return DeadLetterInfo(reason, status, made, redact.url(sub.sink))


def dead_letter(event: Event, info: DeadLetterInfo) -> Request:
    """A dead-letter notice: the event in structured mode plus deadletter* extensions."""
    extra: dict[str, AttributeValue] = {"deadletterreason": info.reason}
    if info.status is not None:
        extra["deadletterstatus"] = info.status
    extra["deadletterattempts"] = info.attempts
    # Stored redacted; redacted again for rows written before redaction existed.
    extra["deadlettersink"] = redact.url(info.sink)
    return structured(event, extra)


def render(sub: Subscription, leased: Leased) -> Request:
    """The request for one leased delivery row of `sub`."""
    if leased.kind is Kind.DEAD_LETTER:
        # A dead-letter row always carries its info; the fallback only keeps a row sendable.
        return dead_letter(leased.event, dead_letter_info(sub, leased, "exhausted", None))
    mode = sub.delivery.mode
    if mode is Mode.STRUCTURED:
        return structured(leased.event)
    if mode is Mode.BATCH:
        return batch((leased.event,))
    return binary(leased.event)


def _json_object(event: Event, extra: Mapping[str, AttributeValue] | None) -> dict[str, Any]:
    # JSON format 2.2: attributes are top-level members with their JSON types; extensions too.
    obj: dict[str, Any] = dict(event.attributes)
    if extra:
        obj.update(extra)
    data = event.data
    if data is None or event.kind is DataKind.NONE:
        return obj
    # JSON format 3.1: JSON data as a JSON value, other text as a string, binary as base64.
    if event.kind is DataKind.JSON:
        obj["data"] = orjson.Fragment(data)
    elif event.kind is DataKind.TEXT:
        obj["data"] = data.decode("utf-8")
    else:
        obj["data_base64"] = base64.b64encode(data).decode("ascii")
    return obj
