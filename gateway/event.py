"""The gateway's in-memory CloudEvent: context attributes as received plus the encoded data bytes.

An `Event` keeps every attribute with the JSON type it arrived with (String, Integer, Boolean) so
that it leaves the gateway unchanged, and keeps `data` as bytes (the body a binary-mode message
would carry) together with how the JSON format represents it (`DataKind`). Parsing and rendering
live elsewhere (`gateway.ingest.modes`, `gateway.delivery.render`); this module only holds values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

AttributeValue = str | int | bool
REQUIRED = ("id", "source", "specversion", "type")
SPECVERSION = "1.0"


class DataKind(IntEnum):
    """How `data` is carried in the JSON format (CE JSON format 3.1)."""

    NONE = 0  # no data member at all
    JSON = 1  # `data` holds a JSON value; `Event.data` is its JSON text
    TEXT = 2  # `data` holds a string; `Event.data` is its UTF-8 encoding
    BINARY = 3  # `data_base64`; `Event.data` is the raw bytes


class _Unparsed:
    """Marker: the JSON value of `data` has not been parsed (yet)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNPARSED"


UNPARSED: Any = _Unparsed()

# CE JSON format 3.1: JSON-formatted data when the media type (parameters stripped) is
# */json or */*+json; compared case-insensitively (CE core, datacontenttype, main).
_JSON_MEDIA = re.compile(r"^[^/\s;]+/(?:[^;\s]*\+)?json\s*(?:;.*)?$", re.IGNORECASE | re.DOTALL)


def is_json_media_type(content_type: str | None) -> bool:
    """True when data of this media type is JSON; an absent type means JSON (JSON format 3.1)."""
    return content_type is None or bool(_JSON_MEDIA.match(content_type))


def is_text_media_type(content_type: str) -> bool:
    """True for media types whose data the JSON format may carry as a string."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media.endswith(("/xml", "+xml"))


def canonical(value: AttributeValue) -> str:
    """The canonical string of an attribute value (CE core, Type System)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Event:
    """One CloudEvent. `attributes` never contains `data`/`data_base64`."""

    attributes: dict[str, AttributeValue]
    data: bytes | None = None
    kind: DataKind = DataKind.NONE
    # The decoded JSON value of `data` when kind is JSON and it was parsed at ingest; used for
    # schema validation. Not part of the event's identity.
    value: Any = field(default=UNPARSED, compare=False, repr=False)

    @property
    def id(self) -> str:
        return str(self.attributes["id"])

    @property
    def source(self) -> str:
        return str(self.attributes["source"])

    @property
    def type(self) -> str:
        return str(self.attributes["type"])

    @property
    def datacontenttype(self) -> str | None:
        value = self.attributes.get("datacontenttype")
        return None if value is None else str(value)

    @property
    def dataschema(self) -> str | None:
        value = self.attributes.get("dataschema")
        return None if value is None else str(value)
