"""Redaction of sink URLs, fingerprints, clipped identifiers and the shared sink URL parser."""

from __future__ import annotations

import pytest

from gateway import redact, sinkurl


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:PASSWORD@host/path?token=SECRET",
         "http://alice:***@host/path?token=***"),
        ("https://host:8443/a/b?x=1&y=&z", "https://host:8443/a/b?x=***&y=***&***"),
        ("https://ghp_TOKEN@github.test/hook", "https://***@github.test/hook"),
        ("https://u:@host/", "https://u:***@host/"),
        ("https://host/p#access_token=SECRET", "https://host/p#***"),
        ("https://host/plain", "https://host/plain"),
        ("http://[::1]:8080/x?k=v", "http://[::1]:8080/x?k=***"),
        ("http://a:b@c@host/x", "http://a:***@host/x"),  # the last @ ends the user-info
    ],
)
def test_url_masks_password_query_values_and_fragment(url: str, shown: str) -> None:
    assert redact.url(url) == shown
    assert redact.url(shown) == shown  # masking twice changes nothing


def test_a_url_that_cannot_be_split_is_masked_whole() -> None:
    assert redact.url("http://[::1/x?token=SECRET") == redact.MASK


def test_fingerprints_match_only_their_url_and_never_contain_it() -> None:
    url = "https://u:pw-SECRET@host/x?token=SECRET"
    stored = redact.fingerprint(url)
    assert "SECRET" not in stored
    assert redact.matches(url, stored)
    assert not redact.matches(url.replace("token=SECRET", "token=OTHER"), stored)
    assert redact.fingerprint(url) != stored  # salted
    assert not redact.matches(url, "sha256$00$00")
    assert not redact.matches(url, "scrypt$zz$00")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("order-1", "order-1"),
        ("x" * 128, "x" * 128),
        ("x" * 129, "x" * 127 + "…"),
        ("y" * 1_000_000, "y" * 127 + "…"),
        ("a\nb\x1b[31m", "a\\nb\\x1b[31m"),  # no forged log lines, no terminal escapes
    ],
)
def test_clip(text: str, shown: str) -> None:
    assert redact.clip(text) == shown


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://2130706433/", "numeric form"),
        ("http://127.1/", "numeric form"),
        ("http://0177.0.0.1/", "numeric form"),
        ("http://0x7f.0.0.1/x", None),  # not all digits: a name, left to the resolver
        ("http://127.0.0.1:8080/x", None),
        ("http://[::1]/x", None),
        ("https://hooks.example.com/x?token=1", None),
        ("ftp://host/x", r"absolute http\(s\), nats, amqp or mqtt URL"),
        ("/relative", r"absolute http\(s\), nats, amqp or mqtt URL"),
        ("http:///nohost", r"absolute http\(s\), nats, amqp or mqtt URL"),
        ("http://host:99999/", "not a valid URL"),
        ("http://ho st/", "spaces or control characters"),
        ("http://host/\n", "spaces or control characters"),
    ],
)
def test_sink_urls_as_the_sender_reads_them(url: str, why: str | None) -> None:
    if why is None:
        assert str(sinkurl.parse(url))
        return
    with pytest.raises(sinkurl.InvalidSink, match=why):
        sinkurl.parse(url)
