"""Percent-encoding of binary-mode header values (CE HTTP binding 3.1.3.2)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import percent
from gateway.errors import InvalidEvent
from tests.conftest import load_vector


def _vectors(section: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = load_vector("cloudevents-spec/http_header_percent_encoding.json")[
        section
    ]
    return cases


def test_spec_vectors_encode() -> None:
    for case in _vectors("encode"):
        assert percent.encode(case["value"]) == case["header"]


def test_spec_vectors_decode_encoded() -> None:
    for case in _vectors("encode"):
        assert percent.decode(case["header"]) == case["value"]


def test_spec_vectors_decode_must_accept() -> None:
    for case in _vectors("decode_must_accept"):
        assert percent.decode(case["header"]) == case["value"], case["_why"]


def test_spec_vectors_decode_must_reject() -> None:
    for case in _vectors("decode_must_reject"):
        with pytest.raises(InvalidEvent):
            percent.decode(case["header"])


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("plain", "plain"),
        ("", ""),
        ("%2541", "%41"),  # one round of decoding only
        ("%e2%82%AC", "€"),  # mixed-case hex
        ("Euro €", "Euro €"),  # raw non-ASCII from senders that do not encode
        ('"%41"', "A"),  # quoted-string first, then percent-decoding
        ('""', ""),
        ('"a\\\\b"', "a\\b"),
        ('"abc', '"abc'),  # not a quoted-string: taken as it is
        ("%F0%9F%98%80", "😀"),
    ],
)
def test_decode_accepts(header: str, value: str) -> None:
    assert percent.decode(header) == value


@pytest.mark.parametrize(
    "header",
    [
        "%",  # escape cut short
        "100%",
        "%4",
        "%zz",
        "%4G",
        "%C0%A0",  # overlong
        "%ED%A0%80",  # UTF-8 encoded surrogate
        "%E2%82",  # truncated sequence
        "\udcc0\udca0",  # raw invalid bytes, as aiohttp hands them over (surrogateescape)
        "ok \udcff",
        "\ud800",  # a lone surrogate
        "%41\ud800",
        '"a\\"',  # dangling backslash inside a quoted-string
        '"a"b"',  # unescaped quote inside a quoted-string
    ],
)
def test_decode_rejects(header: str) -> None:
    with pytest.raises(InvalidEvent):
        percent.decode(header)


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("a\tb", "a%09b"),  # controls encoded too
        ("\x7f", "%7F"),
        ("~!#$&'()*+,/:;=?@[]", "~!#$&'()*+,/:;=?@[]"),
    ],
)
def test_encode(value: str, header: str) -> None:
    assert percent.encode(value) == header


@given(st.text())
def test_round_trip(value: str) -> None:
    assert percent.decode(percent.encode(value)) == value


@given(st.text())
def test_encoded_is_printable_ascii_without_space_quote_or_bare_percent(value: str) -> None:
    header = percent.encode(value)
    assert all("\x21" <= ch <= "\x7e" for ch in header)
    assert '"' not in header
    assert all(header[i + 1 : i + 3].isalnum() for i, ch in enumerate(header) if ch == "%")


# Header values as aiohttp hands them over, lone surrogates and surrogate escapes included.
@given(st.text(alphabet=st.characters(exclude_categories=()) | st.sampled_from('%"\\')))
def test_decode_raises_nothing_but_invalid_event(header: str) -> None:
    with contextlib.suppress(InvalidEvent):
        percent.decode(header)


def _encode_by_the_letter(value: str) -> str:
    # CE HTTP binding 3.1.3.2, character by character: space, '"', '%' and everything outside
    # U+0021..U+007E become the upper-case percent-escapes of their UTF-8 bytes.
    return "".join(
        "".join(f"%{byte:02X}" for byte in ch.encode("utf-8"))
        if ch in ' "%' or not "\x21" <= ch <= "\x7e"
        else ch
        for ch in value
    )


@given(st.text() | st.text(alphabet=st.sampled_from(' "%\x20\x21\x7e\x7f\x80é€😀ab%"')))
def test_encode_matches_the_spec_character_by_character(value: str) -> None:
    assert percent.encode(value) == _encode_by_the_letter(value)


def test_encode_every_character_of_the_first_planes() -> None:
    value = "".join(chr(code) for code in range(0x3000) if not 0xD800 <= code <= 0xDFFF)
    assert percent.encode(value) == _encode_by_the_letter(value)
