"""Sink URLs as the sender reads them: one parser for `gateway check` and for delivery.

Besides http(s), a sink may name a message broker (`nats://`, `amqp://`, `mqtt://`): `broker`
reads such a URL into the server to connect to and where on it to publish.

The HTTP client refuses hosts that are numeric but not a canonical dotted quad
(`2130706433`, `127.1`, `0177.0.0.1`): the system resolver would map them to an address that
an allow-list on the written host never sees. Checking with the same rules at load time turns
what would be a dead letter per event into a problem at file:line.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
from dataclasses import dataclass

from yarl import URL

SCHEMES = ("http", "https")
# Broker scheme -> (the optional extra that installs its client, the client's module).
BROKERS: dict[str, tuple[str, str]] = {
    "nats": ("nats", "nats"),
    "amqp": ("amqp", "aio_pika"),
    "mqtt": ("mqtt", "aiomqtt"),
}
_DEFAULT_PORTS = {"nats": 4222, "amqp": 5672, "mqtt": 1883}
_QUERY = {
    "nats": frozenset[str](),
    "amqp": frozenset({"routing_key", "vhost"}),
    "mqtt": frozenset({"qos"}),
}


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker sink: the server to connect to and where on it to publish."""

    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None
    target: str  # NATS subject, AMQP exchange ("" is the default exchange), MQTT topic
    routing_key: str = ""  # AMQP
    vhost: str = "/"  # AMQP
    qos: int = 1  # MQTT

    @property
    def server(self) -> str:
        """The key connections are pooled by: one connection per server and credentials."""
        return f"{self.scheme}://{self.user or ''}:{self.password or ''}@{self.host}:{self.port}"


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
    if url.scheme in BROKERS:
        broker(text)
        return url
    if url.scheme not in SCHEMES or not url.raw_host:
        raise InvalidSink("must be an absolute http(s), nats, amqp or mqtt URL")
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


def is_broker(text: str) -> bool:
    """True when the URL names a broker rather than an HTTP endpoint."""
    return text.partition(":")[0].lower() in BROKERS


@functools.lru_cache(maxsize=1024)
def broker(text: str) -> Broker:
    """The broker sink a `nats://`, `amqp://` or `mqtt://` URL names; `InvalidSink` otherwise."""
    if any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidSink("must not contain spaces or control characters")
    try:
        url = URL(text)
        port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
    except (ValueError, TypeError) as exc:
        raise InvalidSink("is not a valid URL") from exc
    scheme = url.scheme
    if scheme not in BROKERS or not url.raw_host:
        raise InvalidSink("must be an absolute nats, amqp or mqtt URL")
    if port is None or not 0 < port < 65536:
        raise InvalidSink("has an invalid port")
    if "#" in text:
        raise InvalidSink("must not contain '#' (a fragment, or an MQTT wildcard)")
    unknown = sorted(set(url.query) - _QUERY[scheme])
    if unknown:
        allowed = ", ".join(sorted(_QUERY[scheme])) or "none"
        raise InvalidSink(f"has unknown query parameter '{unknown[0]}' (allowed: {allowed})")
    target = url.path[1:]
    host, user, password = url.host or url.raw_host, url.user, url.password
    if scheme == "nats":
        return Broker(scheme, host, port, user, password, _subject(target))
    if scheme == "amqp":
        return _amqp(url, host, port, target)
    return Broker(scheme, host, port, user, password, _topic(target), qos=_qos(url))


def _subject(subject: str) -> str:
    # NATS subjects: dot-separated non-empty tokens; a publish names no wildcard (* or >).
    if not subject:
        raise InvalidSink("needs a subject: nats://host:4222/<subject>")
    if "/" in subject or any(not token for token in subject.split(".")):
        raise InvalidSink(f"subject '{subject}' must be dot-separated non-empty tokens")
    if any(token in ("*", ">") for token in subject.split(".")):
        raise InvalidSink(f"subject '{subject}' must not contain wildcards")
    return subject


def _amqp(url: URL, host: str, port: int, exchange: str) -> Broker:
    if "/" in exchange:
        raise InvalidSink("exchange must be a single path segment: amqp://host:5672/<exchange>")
    routing_key = url.query.get("routing_key", "")
    if not exchange and not routing_key:
        raise InvalidSink(
            "needs an exchange or a routing_key: amqp://host:5672/<exchange>?routing_key=..."
        )
    vhost = url.query.get("vhost", "/") or "/"
    return Broker(
        "amqp", host, port, url.user, url.password, exchange,
        routing_key=routing_key, vhost=vhost,
    )  # fmt: skip


def _topic(topic: str) -> str:
    # MQTT 5 4.7: a PUBLISH topic name must not contain the wildcards + or #.
    if not topic:
        raise InvalidSink("needs a topic: mqtt://host:1883/<topic>")
    if "+" in topic or "#" in topic:
        raise InvalidSink(f"topic '{topic}' must not contain wildcards (+ or #)")
    return topic


def _qos(url: URL) -> int:
    text = url.query.get("qos", "1")
    if text not in ("0", "1", "2"):
        raise InvalidSink("qos must be 0, 1 or 2")
    return int(text)


def missing_extra(scheme: str) -> str | None:
    """The extra to install when the client library for a broker scheme is absent, else None."""
    if scheme not in BROKERS:
        return None
    extra, module = BROKERS[scheme]
    try:
        importlib.import_module(module)
    except ImportError:
        return extra
    return None
