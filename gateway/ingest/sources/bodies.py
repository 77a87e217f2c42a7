"""A provider's request body as CloudEvent data, plus the value that `{body.*}` references read.

- JSON (`*/json`, `*/*+json`): the data is the JSON value, kept as the bytes received; JSON
  nested deeper than `gateway.limits.MAX_DEPTH` is refused (400) before it is parsed.
- `application/x-www-form-urlencoded`: the data is the body byte for byte; references read the
  fields as a JSON object (a field sent once is a string, a field repeated is a list of its
  values in order). With a payload field configured (GitHub and Slack send `payload=<json>`),
  a form carrying that field is read as the JSON inside it, which becomes the data.
- `text/*` and XML: text data when it is UTF-8, else binary; references read nothing.
- Anything else: binary data, byte for byte; references read nothing.
The Content-Type as received becomes `datacontenttype`; an empty body carries no data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway.errors import InvalidEvent
from gateway.event import UNPARSED, DataKind, is_json_media_type, is_text_media_type
from gateway.ingest.modes import charset
from gateway.limits import check_depth
from gateway.sources.templates import NOTHING

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Body:
    """The data of the event to build, and what `{body.*}` references read."""

    data: bytes | None = None
    kind: DataKind = DataKind.NONE
    content_type: str | None = None  # becomes datacontenttype
    value: Any = UNPARSED  # the JSON value of `data` when kind is JSON
    view: Any = NOTHING


def request_content_type(headers: Iterable[tuple[str, str]]) -> str | None:
    """The Content-Type as sent, or None; more than one is a malformed request."""
    types = [value for name, value in headers if name.lower() == "content-type"]
    if len(types) > 1:
        raise InvalidEvent("the request has more than one Content-Type header")
    return types[0] if types and types[0] else None


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _json(body: bytes, what: str) -> Any:
    check_depth(body, what)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"{what} is not valid JSON: {exc}") from exc


def _fields(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("the form body is not valid: it must be percent-encoded UTF-8") from exc
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key not in fields:
            fields[key] = value
        elif isinstance(fields[key], list):
            fields[key].append(value)
        else:
            fields[key] = [fields[key], value]
    return fields


def _form(content_type: str, body: bytes, payload_field: str | None) -> Body:
    fields = _fields(body)
    payload = fields.get(payload_field) if payload_field else None
    if isinstance(payload, str):
        encoded = payload.encode("utf-8")
        value = _json(encoded, f"the form field {payload_field!r}")
        return Body(encoded, DataKind.JSON, JSON, value, value)
    return Body(body, DataKind.BINARY, content_type, view=fields)


def _is_utf8_text(content_type: str, body: bytes) -> bool:
    declared = charset(content_type)
    if declared is not None and declared.lower() not in ("utf-8", "utf8", "us-ascii"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode(content_type: str | None, body: bytes, payload_field: str | None = None) -> Body:
    """Read a request body; raises `InvalidEvent` when a JSON or form body is malformed."""
    if not body:
        return Body()
    if content_type is None:
        return Body(body, DataKind.BINARY)
    if is_json_media_type(content_type):
        value = _json(body, "the body")
        return Body(body, DataKind.JSON, content_type, value, value)
    if _media(content_type) == FORM:
        return _form(content_type, body, payload_field)
    if is_text_media_type(content_type) and _is_utf8_text(content_type, body):
        return Body(body, DataKind.TEXT, content_type)
    return Body(body, DataKind.BINARY, content_type)
