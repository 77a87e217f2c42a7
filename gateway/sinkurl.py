"""Sink URLs as the sender reads them: one parser for `gateway check` and for delivery.

The HTTP client refuses hosts that are numeric but not a canonical dotted quad
(`2130706433`, `127.1`, `0177.0.0.1`): the system resolver would map them to an address that
an allow-list on the written host never sees. Checking with the same rules at load time turns
what would be a dead letter per event into a problem at file:line.
"""

from __future__ import annotations

import functools
import ipaddress

from yarl import URL

SCHEMES = ("http", "https")


class InvalidSink(ValueError):
    """The URL cannot be a sink; the message says why, without repeating the URL."""


@functools.lru_cache(maxsize=1024)  # the sender asks once per attempt; sinks are few
def parse(text: str) -> URL:
    """The sink URL the sender posts to; `InvalidSink` when it would refuse it."""
    if any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidSink("must not contain spaces or control characters")
    try:
        url = URL(text)
        port = url.port
    except (ValueError, TypeError) as exc:
        raise InvalidSink("is not a valid URL") from exc
    if url.scheme not in SCHEMES or not url.raw_host:
        raise InvalidSink("must be an absolute http(s) URL")
    if port is None or not 0 < port < 65536:
        raise InvalidSink("has an invalid port")
    host = url.raw_host
    if ":" not in host and host.replace(".", "").isdigit() and not _dotted_quad(host):
        raise InvalidSink(
            f"host '{host}' is a numeric form the sender refuses; "
            "write the address as four decimal octets (e.g. 127.0.0.1)"
        )
    return url


def _dotted_quad(host: str) -> bool:
    # ipaddress accepts only the canonical form: four decimal octets, no leading zeros.
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def has_userinfo(url: URL) -> bool:
    """True when the URL carries `user[:password]@` (the client turns it into Basic auth)."""
    return url.raw_user is not None or url.raw_password is not None
