"""Validation of CloudEvents context attributes against the CloudEvents type system.

One entry point, `validate`, shared by every ingest path (binary, structured, batch, sources):
it checks names, required attributes, value types and the formats of the core attributes, and
returns the attributes exactly as received (minus JSON nulls, which mean "unset").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from gateway.errors import InvalidEvent
from gateway.event import REQUIRED, SPECVERSION, AttributeValue, canonical
from gateway.percent import encode

# CE core, Attribute Naming Convention: lower-case ASCII letters and digits only.
_NAME = re.compile(r"[a-z0-9]+", re.ASCII)

# CE core, Type System, String: no C0/C1 controls, no noncharacters, no unpaired surrogates.
_NONCHARACTERS = "".join(f"\\U{p:04X}FFFE\\U{p:04X}FFFF" for p in range(0x1, 0x11))
_BAD_STRING_CHAR = re.compile(
    "[\\x00-\\x1f\\x7f-\\x9f\\ufdd0-\\ufdef\\ufffe\\uffff\\ud800-\\udfff" + _NONCHARACTERS + "]"
)

# CE core, Type System, Integer: signed 32-bit.
_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1

# RFC 3986 4.1 URI-reference and 4.3 absolute URI (fragment tolerated), as regexes over the
# characters of 2.1-2.3. `_PART` is any run of pchar / "/" / "?" (no "#", no brackets).
# Non-ASCII characters are tolerated as in an IRI (RFC 3987 2.2 ucschar): producers send
# `/devices/é`; controls and noncharacters are already refused by the String rule.
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_CHAR = r"[A-Za-z0-9\-._~:/?@!$&'()*+,;=\u00a0-\U0010ffff]"
_PART = rf"{_CHAR}*(?:%[0-9A-Fa-f]{{2}}{_CHAR}*)*"
# 4.2: without a scheme, the first segment must not contain ":".
_NO_SCHEME = r"(?=[^:/?#]*(?:[/?#]|$))"
# 3.2.2: "[" and "]" only around an IP-literal host.
_IP_LITERAL_AUTHORITY = (
    r"//(?:(?:[A-Za-z0-9\-._~:!$&'()*+,;=]|%[0-9A-Fa-f]{2})*@)?"
    r"\[[0-9A-Za-z:.\-_~!$&'()*+,;=]+\](?::[0-9]*)?(?=[/?#]|$)"
)
_URI_REFERENCE = re.compile(rf"(?:{_SCHEME}:|{_NO_SCHEME}){_PART}(?:#{_PART})?", re.ASCII)
_URI_REFERENCE_IP = re.compile(
    rf"(?:{_SCHEME}:)?{_IP_LITERAL_AUTHORITY}{_PART}(?:#{_PART})?", re.ASCII
)
_URI = re.compile(rf"{_SCHEME}:{_PART}(?:#{_PART})?", re.ASCII)
_URI_IP = re.compile(rf"{_SCHEME}:{_IP_LITERAL_AUTHORITY}{_PART}(?:#{_PART})?", re.ASCII)

# RFC 3339 5.6 date-time, with the field ranges of 5.7 (day-of-month checked afterwards).
_TIMESTAMP = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
    re.ASCII,
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# RFC 2045 5.1 / RFC 2046: type "/" subtype *(";" attribute "=" value), value = token /
# quoted-string; optional whitespace around ";" as HTTP writes it (RFC 9110 8.3.1).
_TOKEN = r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e]|\\[\t\x20-\x7e])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*[ \t]*", re.ASCII
)

_JSON_TYPE_NAMES = {float: "a non-integer number", dict: "an object", list: "an array"}


def _show(value: object) -> str:
    # Bounded work whatever the value: containers are summarized, never repr'd (they may nest
    # deeply or be large), long strings are cut before repr.
    if isinstance(value, dict | list):
        return f"{'an object' if isinstance(value, dict) else 'an array'} of {len(value)}"
    if isinstance(value, str) and len(value) > 80:
        value = value[:80]
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(name: str, message: str) -> InvalidEvent:
    return InvalidEvent(f"attribute '{name}' {message}")


def _check_string(name: str, value: str) -> None:
    # Fast path: printable ASCII (space included) is always a valid String.
    if value.isascii() and value.isprintable():
        return
    bad = _BAD_STRING_CHAR.search(value)
    if bad is not None:
        char = bad.group()
        raise _fail(
            name,
            f"contains U+{ord(char):04X} at offset {bad.start()}; control characters, "
            "noncharacters and unpaired surrogates are not allowed in a String",
        )


def _check_non_empty(name: str, value: str) -> None:
    if not value:
        raise _fail(name, "must not be empty")


def _check_specversion(name: str, value: str) -> None:
    if value != SPECVERSION:
        raise _fail(name, f"is {_show(value)}; the accepted versions are: {SPECVERSION}")


def _check_uri_reference(name: str, value: str) -> None:
    _check_non_empty(name, value)
    if not _URI_REFERENCE.fullmatch(value) and not _URI_REFERENCE_IP.fullmatch(value):
        raise _fail(name, f"must be a URI-reference (RFC 3986 4.1): {_show(value)}")


def _check_uri(name: str, value: str) -> None:
    _check_non_empty(name, value)
    if not _URI.fullmatch(value) and not _URI_IP.fullmatch(value):
        raise _fail(name, f"must be an absolute URI with a scheme (RFC 3986 4.3): {_show(value)}")


def _check_timestamp(name: str, value: str) -> None:
    match = _TIMESTAMP.fullmatch(value)
    if match is not None:
        day = int(match.group(3))
        if day <= 28:
            return
        year, month = int(match.group(1)), int(match.group(2))
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if day <= (29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]):
            return
    raise _fail(name, f"must be an RFC 3339 timestamp: {_show(value)}")


def _check_media_type(name: str, value: str) -> None:
    if not _MEDIA_TYPE.fullmatch(value):
        raise _fail(name, f"must be an RFC 2046 media type (type/subtype;a=b): {_show(value)}")


# Core attributes: each is a String (or a String-encoded URI, URI-reference, Timestamp).
_CORE: dict[str, Callable[[str, str], None]] = {
    "id": _check_non_empty,
    "source": _check_uri_reference,
    "specversion": _check_specversion,
    "type": _check_non_empty,
    "datacontenttype": _check_media_type,
    "dataschema": _check_uri,
    "subject": _check_non_empty,
    "time": _check_timestamp,
}


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidEvent(
            f"attribute name {_show(name)} is invalid: names consist of lower-case letters a-z "
            "and digits 0-9 only"
        )
    if name == "data":
        raise InvalidEvent("attribute name 'data' is reserved and cannot be used")


def _extension_value(name: str, value: object) -> AttributeValue:
    # CE core, Type System: a JSON bool is a Boolean, never an Integer.
    if isinstance(value, str):
        _check_string(name, value)
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _fail(name, f"is {value}, outside the signed 32-bit Integer range")
        return value
    kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    raise _fail(name, f"is {kind} ({_show(value)}); values must be String, Integer or Boolean")


def header_size(value: AttributeValue, limit: int) -> int:
    """The length of the value as a binary-mode header carries it (canonical string,
    percent-encoded: CE HTTP binding 3.1.3.2); any result over `limit` may be an estimate."""
    text = canonical(value)
    if text.isascii() and text.isprintable() and '"' not in text and "%" not in text:
        return len(text) + text.count(" ") * 2
    size = len(text.encode("utf-8", "surrogatepass"))
    # An encoded value is never shorter than its UTF-8 bytes: encode only what may fit.
    return size if size > limit else len(encode(text))


def check_sizes(attributes: Mapping[str, AttributeValue], each: int, total: int) -> None:
    """Refuse (400) an event whose attributes would not fit in binary-mode headers: a value
    over `each` bytes, or names and values over `total` bytes together."""
    used = 0
    for name, value in attributes.items():
        size = header_size(value, each)
        if size > each:
            raise _fail(
                name,
                f"is {size} bytes as a binary-mode header; the limit is {each} bytes per "
                "attribute (limits.max_attribute_bytes)",
            )
        used += len(name) + size
    if used > total:
        raise InvalidEvent(
            f"the attributes take {used} bytes as binary-mode headers (names and values); the "
            f"limit is {total} bytes for all attributes together (limits.max_attributes_bytes)"
        )


def validate(raw: Mapping[str, object]) -> dict[str, AttributeValue]:
    """Check a dict of context attributes (no data/data_base64 keys) and return it cleaned.

    JSON null means unset (dropped). Raises `InvalidEvent` with a detail naming the attribute.
    """
    out: dict[str, AttributeValue] = {}
    for name, value in raw.items():
        if value is None:  # JSON format 2.4: null means unset
            continue
        check = _CORE.get(name)
        if check is None:
            _check_name(name)
            out[name] = _extension_value(name, value)
            continue
        if not isinstance(value, str):
            raise _fail(name, f"must be a String, got {_show(value)}")
        if not (value.isascii() and value.isprintable()):
            _check_string(name, value)
        check(name, value)
        out[name] = value
    if not ("id" in out and "source" in out and "specversion" in out and "type" in out):
        missing = ", ".join(r for r in REQUIRED if r not in out)
        raise InvalidEvent(f"missing required attribute(s): {missing}")
    return out
