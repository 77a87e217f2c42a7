"""Content modes of the CloudEvents HTTP binding: detect the mode and parse a message into events.

Pure functions over a message's headers and body bytes (no I/O). Binary mode keeps `data` byte
for byte; structured and batched mode accept the JSON format only and keep the JSON text of
`data` as received (parsed only to be validated and filtered), so big integers, `-0` and `1E2`
leave as they came. JSON text deeper than `gateway.limits.MAX_DEPTH` is refused before it is
parsed. Every failure is a `GatewayError`: `InvalidEvent` (400) or `UnsupportedMediaType` (415).
"""

from __future__ import annotations

import base64
import enum
from typing import Any

import msgspec
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from gateway import percent
from gateway.attributes import validate
from gateway.errors import GatewayError, InvalidEvent, UnsupportedMediaType
from gateway.event import (
    REQUIRED,
    DataKind,
    Event,
    is_json_media_type,
    is_text_media_type,
)
from gateway.limits import BATCH_ENVELOPE, STRUCTURED_ENVELOPE, check_depth

Headers = CIMultiDictProxy[str] | CIMultiDict[str]

_BATCH_PREFIX = "application/cloudevents-batch"
_STRUCTURED_PREFIX = "application/cloudevents"
_BATCH_JSON = "application/cloudevents-batch+json"
_STRUCTURED_JSON = "application/cloudevents+json"
_UTF8 = "utf-8"
# Content-Type spellings already found acceptable: producers repeat the same few.
_ACCEPTED: set[str] = set()
_ACCEPTED_MAX = 64
# The members of a JSON object, each as its JSON text (JSON format 3: a structured event);
# the items of a JSON array likewise (JSON format 4: a batch).
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])


class ContentMode(enum.Enum):
    """The three HTTP content modes (CE HTTP binding 3)."""

    BINARY = "binary"
    STRUCTURED = "structured"
    BATCH = "batch"


def detect(content_type: str | None) -> ContentMode:
    """The content mode a Content-Type announces (CE HTTP binding 3, case-insensitive on main)."""
    if not content_type:
        return ContentMode.BINARY
    # The batch prefix first: the structured prefix is a prefix of it.
    head = content_type[: len(_BATCH_PREFIX)].lower()
    if head == _BATCH_PREFIX:
        return ContentMode.BATCH
    if head.startswith(_STRUCTURED_PREFIX):
        return ContentMode.STRUCTURED
    return ContentMode.BINARY


def charset(content_type: str) -> str | None:
    """The charset parameter of a media type, unquoted, or None (RFC 9110 8.3.2)."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            value = value.strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            return value
    return None


def _check_format(content_type: str, expected: str) -> None:
    # CE HTTP binding 3.2.1 / 3.3.1: the media type names the event format; only JSON is known.
    if content_type in _ACCEPTED:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != expected:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} names an event format this endpoint cannot read; "
            f"use {expected}"
        )
    declared = charset(content_type)
    if declared is not None and declared.lower() != _UTF8:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} has charset {declared!r}; only utf-8 is supported"
        )
    if len(_ACCEPTED) < _ACCEPTED_MAX:
        _ACCEPTED.add(content_type)


def _load_json(body: bytes, what: str, envelope: int = 0) -> Any:
    if not body:
        raise InvalidEvent(f"the body is empty; {what} must be JSON")
    check_depth(body, "the body", envelope)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"the body is not valid JSON ({what}): {exc}") from exc


def _decode_base64(encoded: object) -> bytes:
    # CE JSON format 3.1: data_base64 is a Base64 (RFC 4648) string, decoded to binary.
    if not isinstance(encoded, str):
        raise InvalidEvent("'data_base64' must be a string of Base64")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII characters
        raise InvalidEvent(f"'data_base64' is not valid Base64: {exc}") from exc


def parse_structured(obj: object) -> Event:
    """One JSON-format event (CE JSON format 3) already decoded by orjson; JSON `data` is
    encoded again (for tools such as `gateway route`; ingest keeps the text as received)."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"a structured-mode event must be a JSON object, not {_json_kind(obj)}")
    raw = dict(obj)
    if "data" not in raw:
        return _structured(raw, None)
    data = raw.pop("data")
    return _structured(raw, _Data(data, None))


def _member(text: bytes | memoryview) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"the body is not valid JSON ({_STRUCTURED_JSON}): {exc}") from exc


def _structured_text(body: bytes | memoryview) -> Event:
    """One JSON-format event from its JSON text, keeping the text of `data` as received."""
    try:
        members = _MEMBERS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # Not an object, or malformed: orjson names the fault as for every other body.
        obj = _member(body)
        if isinstance(obj, dict):
            raise InvalidEvent(f"the body is not valid JSON ({_STRUCTURED_JSON}): {exc}") from exc
        return parse_structured(obj)
    text = members.pop("data", None)
    # Every member is parsed by orjson, so nothing passes that it would refuse in one body.
    raw = {name: _member(memoryview(value)) for name, value in members.items()}
    if text is None:
        return _structured(raw, None)
    data = bytes(text)
    return _structured(raw, _Data(_member(data), data))


class _Data:
    """The `data` member of a JSON-format event: its value, and its JSON text when known."""

    __slots__ = ("text", "value")

    def __init__(self, value: object, text: bytes | None) -> None:
        self.value = value
        self.text = text

    def encoded(self) -> bytes:
        if self.text is not None:
            return self.text
        try:
            return orjson.dumps(self.value)
        except orjson.JSONEncodeError as exc:
            raise InvalidEvent(f"'data' cannot be encoded as JSON: {exc}") from exc


def _structured(raw: dict[str, object], data: _Data | None) -> Event:
    """The event of a JSON-format object whose `data` member is `data` (None: absent)."""
    encoded = raw.pop("data_base64", None)  # null means absent, like any unset member
    attributes = validate(raw)
    if encoded is not None:
        if data is not None:
            raise InvalidEvent("'data' and 'data_base64' are mutually exclusive (JSON format 3.1)")
        return Event(attributes, _decode_base64(encoded), DataKind.BINARY)
    if data is None:
        return Event(attributes)
    content_type = attributes.get("datacontenttype")
    media = content_type if isinstance(content_type, str) else None
    # CE JSON format 3.1: JSON media type (or none) -> `data` is a JSON value, kept as its text.
    if is_json_media_type(media):
        return Event(attributes, data.encoded(), DataKind.JSON, data.value)
    if not isinstance(data.value, str):
        raise InvalidEvent(
            f"'data' must be a string when datacontenttype is {media!r} (not JSON), "
            f"not {_json_kind(data.value)}; use data_base64 for binary data"
        )
    try:
        text = data.value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEvent("'data' contains an unpaired surrogate") from exc
    return Event(attributes, text, DataKind.TEXT)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


def _parse_batch(body: bytes) -> list[Event]:
    # CE JSON format 4: an array of JSON-format events, possibly empty.
    if not body:
        raise InvalidEvent(f"the body is empty; {_BATCH_JSON} must be JSON")
    check_depth(body, "the body", BATCH_ENVELOPE)
    try:
        items = _ITEMS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        doc = _load_json(body, _BATCH_JSON, BATCH_ENVELOPE)
        if isinstance(doc, list):
            raise InvalidEvent(f"the body is not valid JSON ({_BATCH_JSON}): {exc}") from exc
        raise InvalidEvent(f"a batch must be a JSON array, not {_json_kind(doc)}") from None
    events: list[Event] = []
    first: object = None
    for index, item in enumerate(items):
        try:
            event = _structured_text(memoryview(item))
        except GatewayError as error:
            raise error.at(index) from None
        version = event.attributes["specversion"]
        if first is None:
            first = version
        elif version != first:
            # CE HTTP binding 3.3: all events of a batch MUST have the same specversion.
            raise InvalidEvent(
                f"specversion {version!r} differs from {first!r}: a batch has one specversion"
            ).at(index)
        events.append(event)
    return events


def _ce_headers(headers: Headers) -> dict[str, object]:
    """Attributes from `ce-` headers (CE HTTP binding 3.1.3), percent-decoded."""
    raw: dict[str, object] = {}
    for key, value in headers.items():
        if len(key) < 3 or key[2] != "-" or key[:2].lower() != "ce":
            continue
        name = key[3:].lower()
        if name in raw:
            # CE core (main): each attribute MUST appear at most once.
            raise InvalidEvent(f"header ce-{name} appears more than once")
        if name == "datacontenttype":
            # CE HTTP binding 3.1.1: Content-Type carries it; ce-datacontenttype MUST NOT appear.
            raise InvalidEvent(
                "header ce-datacontenttype is not allowed: in binary mode the Content-Type "
                "header carries datacontenttype"
            )
        try:
            raw[name] = percent.decode(value)
        except InvalidEvent as error:
            raise InvalidEvent(f"header ce-{name}: {error.detail}") from error
    return raw


def _binary_data(content_type: str | None, body: bytes) -> tuple[DataKind, object]:
    """How a binary-mode body is carried, and its JSON value when it is JSON."""
    if not body:
        return DataKind.NONE, None
    if content_type is None:
        return DataKind.BINARY, None
    if is_json_media_type(content_type):
        return DataKind.JSON, _load_json(body, f"Content-Type is {content_type!r}")
    if is_text_media_type(content_type):
        declared = charset(content_type)
        if declared is None or declared.lower() == _UTF8:
            if body.isascii():
                return DataKind.TEXT, None
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                return DataKind.BINARY, None
            return DataKind.TEXT, None
    return DataKind.BINARY, None


def _parse_binary(headers: Headers, content_type: str | None, body: bytes) -> Event:
    raw = _ce_headers(headers)
    if not raw:
        raise InvalidEvent(
            "the request is not a CloudEvent: it has no ce- headers (binary mode needs ce-id, "
            f"ce-source, ce-specversion and ce-type) and its Content-Type is not {_STRUCTURED_JSON}"
        )
    missing = [f"ce-{name}" for name in REQUIRED if name not in raw]
    if missing:
        raise InvalidEvent(f"binary-mode CloudEvent is missing header(s): {', '.join(missing)}")
    if content_type is not None:
        raw["datacontenttype"] = content_type  # CE HTTP binding 3.1.1, kept verbatim
    attributes = validate(raw)
    kind, value = _binary_data(content_type, body)
    if kind is DataKind.NONE:
        return Event(attributes)
    if kind is DataKind.JSON:
        return Event(attributes, body, kind, value)
    return Event(attributes, body, kind)


def parse(headers: Headers, body: bytes) -> tuple[ContentMode, list[Event]]:
    """The content mode of an HTTP message and the events it carries (CE HTTP binding 3)."""
    types = headers.getall("Content-Type", [])
    if len(types) > 1:
        raise InvalidEvent("the request has more than one Content-Type header")
    content_type = types[0] if types and types[0] else None
    mode = detect(content_type)
    if content_type is None or mode is ContentMode.BINARY:
        return ContentMode.BINARY, [_parse_binary(headers, content_type, body)]
    if mode is ContentMode.BATCH:
        _check_format(content_type, _BATCH_JSON)
        return mode, _parse_batch(body)
    _check_format(content_type, _STRUCTURED_JSON)
    # CE HTTP binding 3.2: the body is authoritative; ce- headers are ignored.
    if not body:
        raise InvalidEvent(f"the body is empty; {_STRUCTURED_JSON} must be JSON")
    check_depth(body, "the body", STRUCTURED_ENVELOPE)
    return mode, [_structured_text(body)]
