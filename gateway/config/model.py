"""The configuration as frozen dataclasses: built once by `gateway.config.loader`, read everywhere.

Durations are float seconds. Nothing outside `gateway.config` reads YAML or the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.diagnostics import format_path
from gateway.egress import EgressPolicy
from gateway.limits import Limits

if TYPE_CHECKING:
    from gateway.routing.filters import Filter
    from gateway.sources.templates import Template


class Mode(StrEnum):
    BINARY = "binary"
    STRUCTURED = "structured"
    BATCH = "batch"


class Backoff(StrEnum):
    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8  # total attempts, the first included
    backoff: Backoff = Backoff.EXPONENTIAL
    initial_delay: float = 1.0
    max_delay: float = 3600.0
    schedule: tuple[float, ...] = ()  # explicit delays before retry 1, 2, ...; wins over backoff
    jitter: float = 0.2  # each delay is multiplied by a factor drawn from [1 - jitter, 1 + jitter]


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """CONTRACT 5: `failures` consecutive failed attempts open it; a probe after `cooldown`."""

    failures: int = 10
    cooldown: float = 30.0
    max_cooldown: float = 600.0  # failed probes double the cooldown up to this


@dataclass(frozen=True, slots=True)
class Batch:
    """CONTRACT 5, `mode: batch`: one request carries up to `max_events` events, its body at
    most `max_bytes` (one larger event goes alone); a short batch waits up to `linger`."""

    max_events: int = 100
    max_bytes: int = 1_048_576
    linger: float = 0.05


@dataclass(frozen=True, slots=True)
class Delivery:
    mode: Mode = Mode.BINARY
    timeout: float = 10.0
    max_in_flight: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dead_letter: str | None = None
    circuit_breaker: CircuitBreaker | None = field(default_factory=CircuitBreaker)  # None: off
    rate_limit: float | None = None  # requests per second to the sink (CONTRACT 5)
    handshake: bool = False  # CE webhook 4 validation before delivering (CONTRACT 5)
    batch: Batch = field(default_factory=Batch)  # read only with mode: batch
    ordering: str | None = None  # the attribute whose value orders deliveries (CONTRACT 5)


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    sink: str
    types: tuple[str, ...] = ()
    source: str | None = None
    filters: tuple[Filter, ...] = ()
    delivery: Delivery = field(default_factory=Delivery)
    headers: tuple[tuple[str, str], ...] = ()
    bearer: str | None = field(default=None, repr=False)
    # "whsec_..." secrets; one signature per secret, so a subscriber can rotate without downtime
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)
    file: str = ""  # where it was declared, for messages
    line: int = 0
    index: int = 0  # its position in its file's `subscriptions` list
    # The line of every key path in its file (shared by the file's subscriptions).
    lines: Mapping[tuple[str | int, ...], int] = field(
        default_factory=dict, compare=False, repr=False
    )

    def where(self, *parts: str | int) -> tuple[int, str]:
        """The line and key path of a key inside this subscription, as its own file numbers
        them (`"types", 0` -> `subscriptions[1].types[0]`), so that a finding about it reads
        like a loader problem; the line is its nearest enclosing key's when it has none."""
        path: tuple[str | int, ...] = ("subscriptions", self.index, *parts)
        shown = format_path(path)
        while len(path) > 2 and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, self.line), shown


@dataclass(frozen=True, slots=True)
class TLS:
    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True, slots=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    shutdown_grace: float = 10.0  # time given to in-flight deliveries on SIGTERM/SIGINT
    tls: TLS | None = None
    # Slow clients (README, Security: deadlines): time to send a request's headers, counted from
    # the connection's opening or the request's first byte; time to send its body once the
    # headers are in; time an idle keep-alive connection is kept; connections open at once.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    max_connections: int = 1000


@dataclass(frozen=True, slots=True)
class Admin:
    """The admin API's own listener (CONTRACT 6); absent from the config = no listener."""

    host: str = "127.0.0.1"
    port: int = 8081
    token: str | None = field(default=None, repr=False)  # Bearer token; required off loopback


@dataclass(frozen=True, slots=True)
class Producer:
    name: str
    tokens: tuple[str, ...] = field(default=(), repr=False)
    sources: tuple[str, ...] = ()  # globs; empty = any
    types: tuple[str, ...] = ()  # globs; empty = any
    client_cn: str | None = None  # mutual TLS: a client certificate with this common name


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Gateway-wide delivery limits (an extension of the contract, documented in the README)."""

    max_in_flight: int = 256  # concurrent delivery attempts across all subscriptions
    poll_interval: float = 1.0  # longest sleep between looks at the store when idle
    backlog_high_water: int = 1_000_000  # pending deliveries above which ingest answers 429
    purge_interval: float = 60.0


@dataclass(frozen=True, slots=True)
class Verify:
    """How a source's requests are verified (`gateway.ingest.sources.verify`). Provider
    schemes (github, gitlab, shopify, slack) are stored as the base kind they use."""

    kind: str = "none"  # hmac | token | bearer | basic | stripe | standard-webhooks | none
    scheme: str = "none"  # as configured, e.g. "github"; for messages
    secrets: tuple[str, ...] = field(default=(), repr=False)  # any one verifies (rotation)
    header: str = ""  # lower-case name of the header carrying the signature or token
    algorithm: str = "sha256"  # hmac: sha1 | sha256 | sha512
    encoding: str = "hex"  # hmac: hex | base64
    prefix: str = ""  # text before the signature or token in its header
    signed: Template | None = None  # hmac: what is signed; None = the body
    timestamp_header: str | None = None  # hmac: Unix seconds, checked against `tolerance`
    tolerance: float = 300.0
    username: str | None = None  # basic


@dataclass(frozen=True, slots=True)
class Source:
    """An any-format source: `POST <path>` becomes one CloudEvent (CONTRACT 1, sources)."""

    name: str
    path: str
    verify: Verify = field(default_factory=Verify)
    # CloudEvent attribute -> its templates, tried in order until one resolves. Without an
    # `id` entry the gateway mints one.
    event: tuple[tuple[str, tuple[Template, ...]], ...] = ()
    preset: str | None = None
    payload_field: str | None = None  # form bodies: the field holding the JSON payload
    handshake: str | None = None  # a provider's URL check answered before mapping ("slack")
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # config/gateway.yaml
    server: Server = field(default_factory=Server)
    store: str = "sqlite:///data/gateway.db"  # the URL as written; see store_url
    store_url: str = ""  # the URL with a sqlite path made absolute
    schemas: Path = Path("schemas")
    unknown_types: str = "accept"  # accept | reject
    dedupe_window: float = 86_400.0
    retention: float = 7 * 86_400.0
    subscriptions: tuple[Subscription, ...] = ()
    sources: tuple[Source, ...] = ()
    producers: tuple[Producer, ...] = ()
    # Extension attribute set to the publishing producer's name on every event; None = off.
    producer_attribute: str | None = None
    dispatch: Dispatch = field(default_factory=Dispatch)
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    limits: Limits = field(default_factory=Limits)  # per-event attribute sizes
    admin: Admin | None = None
    # WebHook-Request-Origin of `handshake: true` subscriptions (CE webhook 4); "" until loaded.
    origin: str = ""
    files: tuple[str, ...] = field(default=(), compare=False)  # every config file read

    def subscription(self, name: str) -> Subscription | None:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        return None


def ordering_attributes(subscriptions: Iterable[Subscription]) -> dict[str, str]:
    """Per-key ordering (CONTRACT 5): ordered subscription -> its key attribute (what the
    router stamps on each row; empty: nothing is ordered)."""
    return {sub.name: sub.delivery.ordering for sub in subscriptions if sub.delivery.ordering}
