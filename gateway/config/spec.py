"""What each configuration file may contain: every section, its keys, their kinds and limits.

One description serves two readers. The loader takes its known keys and the limits of plain
values from here (`keys`, `gateway.config.fields.scalar`); `gateway.config.schemagen` turns the
same description into the JSON Schema that editors use (`gateway schema`). Checks that need
more than one value or the file system (a TLS pair that loads, a schema folder that exists,
names unique across files) stay in the readers: the schema is an editing aid that accepts a
superset, never a config the loader takes refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from gateway.config.model import Backoff, Mode
from gateway.config.sizes import SIZE
from gateway.routing.datafilter import OPERATORS
from gateway.routing.filters import SUPPORTED
from gateway.sources.kinds import ALGORITHMS, ENCODINGS, KINDS
from gateway.sources.presets import PRESETS, SCHEMES

# -- kinds of values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A string; non-empty unless `empty`; matching `pattern` (ECMA-262 and Python alike)."""

    doc: str = ""
    pattern: str | None = None
    empty: bool = False


@dataclass(frozen=True)
class Url:
    """An absolute http(s) URL the sender can post to, or a nats/amqp/mqtt broker sink
    (`gateway.sinkurl`)."""

    doc: str = ""


@dataclass(frozen=True)
class Integer:
    doc: str = ""
    minimum: int | None = 0
    maximum: int | None = None


@dataclass(frozen=True)
class Number:
    doc: str = ""
    minimum: float = 0  # ints: messages say "must be <= 1"
    maximum: float = 1


@dataclass(frozen=True)
class Flag:
    doc: str = ""


@dataclass(frozen=True)
class Duration:
    """`250ms`, `10s`, `5m`, `2h`, `1d`, compounds (`1h30m`) or a number of seconds."""

    doc: str = ""
    positive: bool = False


@dataclass(frozen=True)
class Choice:
    doc: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListOf:
    item: Node
    doc: str = ""
    min_items: int = 0


@dataclass(frozen=True)
class MapOf:
    """A mapping of names (matching `names`) to values of one kind."""

    value: Node
    doc: str = ""
    names: str | None = None
    min_items: int = 0
    excluded: tuple[str, ...] = ()  # names that match `names` but are refused


@dataclass(frozen=True)
class Section:
    """A mapping with known keys; `nullable`: `key:` with nothing after it counts as empty."""

    keys: Mapping[str, Node]
    doc: str = ""
    required: tuple[str, ...] = ()
    nullable: bool = False
    # Rules across keys, in JSON Schema terms (the readers check them in code).
    rules: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OneOf:
    """Any one of several kinds (a token or a list of tokens)."""

    options: tuple[Node, ...]
    doc: str = ""


@dataclass(frozen=True)
class Ref:
    """A named definition (`filter`: filters nest), generated once under `$defs`."""

    name: str
    doc: str = ""


@dataclass(frozen=True)
class Nullable:
    """`value`, or null (`dead_letter: null` removes a default's dead letter)."""

    value: Node
    doc: str = ""


@dataclass(frozen=True)
class Anything:
    doc: str = ""


Node: TypeAlias = (
    Text | Url | Integer | Number | Flag | Duration | Choice | ListOf | MapOf | Section | OneOf
    | Ref | Nullable | Anything
)  # fmt: skip


def keys(section: Section) -> tuple[str, ...]:
    return tuple(section.keys)


# -- shared pieces ----------------------------------------------------------------------------

NAME = r"^[a-z0-9][a-z0-9_-]*$"
# RFC 9110 5.6.2: a field name is a token.
HEADER_NAME = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
# CE core, Attribute Naming Convention.
ATTRIBUTE_NAME = r"^[a-z0-9]+$"
GLOBS = ListOf(Text("a glob: * matches any run of characters"))

HEADERS = MapOf(
    OneOf((Text(), Integer(minimum=None))),
    "extra request headers, added to every request",
    names=HEADER_NAME,
)

# -- config/subscriptions/*.yaml --------------------------------------------------------------

RETRY = Section(
    {
        "max_attempts": Integer("total attempts, the first one included", 1),
        "backoff": Choice("how delays grow between attempts", tuple(Backoff)),
        "initial_delay": Duration("the delay before the first retry"),
        "max_delay": Duration("no delay is longer; also caps Retry-After"),
        "schedule": ListOf(
            Duration(),
            "explicit delays before retry 1, 2, ...; wins over backoff; the last one repeats",
            min_items=1,
        ),
        "jitter": Number("each delay is multiplied by a factor in [1 - jitter, 1 + jitter]"),
    },
    "when and how often a failed delivery is tried again",
    nullable=True,
)

RATE_LIMIT = r"^[0-9]+(\.[0-9]+)?/(s|m)$"
# A DNS name (RFC 1123 labels): the WebHook-Request-Origin of the validation handshake.
DNS_NAME = (
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

CIRCUIT_BREAKER = Section(
    {
        "failures": Integer("consecutive failed attempts that open it", 1),
        "cooldown": Duration("then one probe; each failed probe doubles it (up to 10m)", True),
    },
    "open: no attempts (events are kept); after the cooldown one probe; success closes it",
    nullable=True,
)

# Batch delivery (CONTRACT 5): the limits `gateway.config.subscriptions` checks in code.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_LINGER = 60.0

BATCH = Section(
    {
        "max_events": Integer("events in one request (default 100)", 1, MAX_BATCH_EVENTS),
        "max_bytes": OneOf(
            (Integer(minimum=1, maximum=MAX_BATCH_BYTES), Text(pattern=SIZE)),
            "the request body at most (default 1MiB); one larger event is sent alone",
        ),
        "linger": Duration("a short batch waits this long for more events (default 50ms)"),
    },
    "mode: batch only: how events are grouped into one request",
    nullable=True,
)

# CONTRACT 5, ordering: per-key FIFO; the key is a CloudEvents attribute name.
ORDERING = Section(
    {
        "key": Text(
            "the attribute whose value is the key (partitionkey, subject, source, an extension); "
            "events without it are unordered",
            ATTRIBUTE_NAME,
        ),
    },
    "per-key FIFO: for one key, an event is not attempted before the one before it is "
    "delivered or dead-lettered",
    required=("key",),
)

DELIVERY = Section(
    {
        "mode": Choice(
            "binary: ce-* headers and data as the body; structured: the JSON event format; "
            "batch: a JSON array of events per request (http(s) sinks only)",
            tuple(Mode),
        ),
        "batch": BATCH,
        "timeout": Duration("per attempt", positive=True),
        "max_in_flight": Integer("concurrent requests to this sink", 1),
        "retry": RETRY,
        "dead_letter": Nullable(Url("events that could not be delivered are POSTed here")),
        "rate_limit": Text(
            "requests to this sink: 50/s or 300/m; shared by all replicas", RATE_LIMIT
        ),
        "circuit_breaker": OneOf(
            (Flag("off (false) disables it; on (true): the defaults"), CIRCUIT_BREAKER),
            "pauses attempts to a sink that keeps failing; on by default",
        ),
        "handshake": Flag(
            "true: the CloudEvents webhook validation (OPTIONS with WebHook-Request-Origin) "
            "before the first delivery and after a sink change; honours WebHook-Allowed-Rate; "
            "http(s) sinks only"
        ),
        "ordering": ORDERING,
    },
    "how events are delivered to the sink",
    nullable=True,
)

# CE Subscriptions API 3.2.4 dialects, plus `sql` (CESQL v1) and `data` (JSON Pointer tests).
_ATTRIBUTE_TESTS = MapOf(
    OneOf((Text(), Integer(minimum=None), Flag())),
    "attribute name -> value",
    names=ATTRIBUTE_NAME,
    min_items=1,
)
_FILTERS = ListOf(Ref("filter"), min_items=1)
FILTER_DIALECTS: Mapping[str, Node] = {
    "exact": _ATTRIBUTE_TESTS,
    "prefix": _ATTRIBUTE_TESTS,
    "suffix": _ATTRIBUTE_TESTS,
    "all": _FILTERS,
    "any": _FILTERS,
    "not": Ref("filter"),
    "sql": Text("a CESQL v1 expression"),
    "data": MapOf(
        Anything(f"a JSON value, or a mapping of conditions ({', '.join(OPERATORS)})"),
        "JSON Pointer into data -> condition",
        names=r"^(/.*)?$",
    ),
}
assert tuple(FILTER_DIALECTS) == SUPPORTED

AUTH = Section({"bearer": Text("Authorization: Bearer <this>")}, required=("bearer",))

SIGNING = Section(
    {
        "secret": Text("whsec_...: a Standard Webhooks signature on every request", r"^whsec_"),
        "secrets": ListOf(Text(pattern=r"^whsec_"), "several secrets while rotating", min_items=1),
    },
    nullable=True,
    rules={"oneOf": [{"required": ["secret"]}, {"required": ["secrets"]}]},
)

SUBSCRIPTION = Section(
    {
        "name": Text("unique across all files", NAME),
        "sink": Url("events are POSTed here"),
        "types": ListOf(Text(), "only events of these types", min_items=1),
        "source": Text("only events whose source equals this"),
        "filters": Nullable(ListOf(Ref("filter"), "all must match")),
        "delivery": DELIVERY,
        "headers": HEADERS,
        "auth": AUTH,
        "signing": SIGNING,
    },
    required=("name", "sink"),
)

SUBSCRIPTIONS_FILE = Section(
    {"subscriptions": Nullable(ListOf(SUBSCRIPTION))},
    "Subscriptions of the CloudEvents gateway (config/subscriptions/*.yaml)",
    nullable=True,
)

# -- config/sources/*.yaml --------------------------------------------------------------------

VERIFY_KEYS: dict[str, tuple[str, ...]] = {
    "hmac": ("kind", "secret", "header", "algorithm", "encoding", "prefix", "signed",
             "timestamp_header", "tolerance"),
    "token": ("kind", "secret", "header", "prefix"),
    "bearer": ("kind", "secret"),
    "basic": ("kind", "secret", "username"),
    "stripe": ("kind", "secret", "header", "tolerance"),
    "standard-webhooks": ("kind", "secret", "tolerance"),
    "none": ("kind",),
}  # fmt: skip
assert tuple(VERIFY_KEYS) == KINDS

def base_kind(kind: str) -> str:
    """The verify kind a provider scheme (`github`, ...) expands to; a base kind itself."""
    return str(SCHEMES[kind]["kind"]) if kind in SCHEMES else kind


def _keys_of_kind(kind: str) -> dict[str, Any]:
    return {
        "if": {"required": ["kind"], "properties": {"kind": {"const": kind}}},
        "then": {"propertyNames": {"enum": list(VERIFY_KEYS[base_kind(kind)])}},
    }


def _preset_verify_keys(name: str) -> dict[str, Any]:
    """A source with a preset and a `verify` without `kind` takes the preset's kind."""
    kind = base_kind(str(PRESETS[name].verify["kind"]))
    without_kind = {"not": {"required": ["kind"]}}
    return {
        "if": {"required": ["preset", "verify"], "properties": {"preset": {"const": name}}},
        "then": {
            "properties": {
                "verify": {
                    "if": without_kind,
                    "then": {"propertyNames": {"enum": list(VERIFY_KEYS[kind])}},
                }
            }
        },
    }


_SECRETS = OneOf((Text(), ListOf(Text(), min_items=1)), "one secret, or a list (rotation)")
_TEMPLATE = Text("a template: text with {headers.<name>}, {query.<name>} or {body.<path>}")

VERIFY = Section(
    {
        "kind": Choice("how requests are verified", (*KINDS, *SCHEMES)),
        "secret": _SECRETS,
        "header": Text("the header carrying the signature or token", HEADER_NAME),
        "algorithm": Choice(options=tuple(ALGORITHMS)),
        "encoding": Choice(options=ENCODINGS),
        "prefix": Text("text before the signature in the header", empty=True),
        "signed": Text("what is signed: {body}, {timestamp}, {headers.<name>}"),
        "timestamp_header": Text("the header carrying the Unix timestamp", HEADER_NAME),
        "tolerance": Duration("how old or new a timestamp may be", positive=True),
        "username": Text(),
    },
    "how requests are verified",
    rules={"allOf": [_keys_of_kind(kind) for kind in (*KINDS, *SCHEMES)]},
)

# CE core attributes the gateway sets itself, never a template.
NOT_TEMPLATED = ("specversion", "datacontenttype", "data")

SOURCE = Section(
    {
        "name": Text("unique across all files", NAME),
        "preset": Choice("fills verify and event for a provider's webhooks", tuple(PRESETS)),
        "path": Text("default /sources/<name>", r"^(/[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+$"),
        "verify": VERIFY,
        "event": MapOf(
            Nullable(OneOf((_TEMPLATE, ListOf(_TEMPLATE, min_items=1)))),
            "CloudEvents attribute -> template (a list: the first that resolves; null drops "
            "a preset's)",
            names=ATTRIBUTE_NAME,
            excluded=NOT_TEMPLATED,
        ),
        "payload_field": Text("a form field that holds the JSON payload"),
    },
    required=("name",),
    rules={
        "allOf": [
            {"if": {"not": {"required": ["preset"]}}, "then": {"required": ["verify", "event"]}},
            *(_preset_verify_keys(name) for name in PRESETS),
        ]
    },
)

SOURCES_FILE = Section(
    {"sources": Nullable(ListOf(SOURCE))},
    "Any-format sources of the CloudEvents gateway (config/sources/*.yaml)",
    nullable=True,
)

# -- config/gateway.yaml ----------------------------------------------------------------------

TLS = Section(
    {
        "cert": Text("PEM certificate file, relative to this file"),
        "key": Text("PEM private key file"),
        "client_ca": Text("PEM CA file: clients must present a certificate it signed"),
    },
    "serve HTTPS",
    required=("cert", "key"),
)

SERVER = Section(
    {
        "host": Text("address to listen on"),
        "port": Integer(maximum=65535),
        "max_body_bytes": Integer("larger requests are refused with 413", 1),
        "shutdown_grace": Duration("time given to in-flight deliveries on stop"),
        "tls": TLS,
        "header_timeout": Duration("to receive a request's headers", positive=True),
        "body_timeout": Duration("to receive a request's body", positive=True),
        "keepalive_timeout": Duration("an idle connection is closed after", positive=True),
        "max_connections": Integer("open connections at most", 1),
    },
    "where and how ingest listens",
    nullable=True,
)

PRODUCER = Section(
    {
        "name": Text(),
        "token": OneOf((Text(), ListOf(Text(), min_items=1)), "Authorization: Bearer <token>"),
        "client_cn": Text("the Common Name of the client certificate (mutual TLS)"),
        "sources": ListOf(Text(), "the sources it may publish (globs)"),
        "types": ListOf(Text(), "the types it may publish (globs)"),
    },
    required=("name",),
    rules={"anyOf": [{"required": ["token"]}, {"required": ["client_cn"]}]},
)

FILES = Nullable(OneOf((Text("a folder"), ListOf(Text(), "files, folders or globs"))))

DISPATCH = Section(
    {
        "max_in_flight": Integer("attempts in flight across all subscriptions", 1),
        "poll_interval": Duration(positive=True),
        "backlog_high_water": Integer("pending deliveries above which ingest answers 429", 1),
        "purge_interval": Duration(positive=True),
    },
    nullable=True,
)

# An attribute limit below this could not hold an event's required attributes.
MIN_ATTRIBUTE_BYTES = 256

VALIDATION = Section(
    {"unknown_types": Choice("events whose type has no schema", ("accept", "reject"))},
    nullable=True,
)

DEFAULTS = Section(
    {"delivery": DELIVERY, "headers": HEADERS},
    "inherited by every subscription; its own keys win",
    nullable=True,
)

EGRESS = Section(
    {
        "allow": ListOf(Text("an IP address or CIDR range")),
        "deny": ListOf(Text("an IP address or CIDR range")),
        "deny_private": Flag("refuse private and loopback addresses"),
    },
    "which addresses sinks may resolve to",
    nullable=True,
)

ADMIN = Section(
    {
        "host": Text("address of the admin listener (a token is required off loopback)"),
        "port": Integer(maximum=65535),
        "token": Text("Authorization: Bearer <this> on every admin request", empty=True),
    },
    "the admin API's own listener; absent = no admin API",
    nullable=True,
)

LIMITS = Section(
    {
        "max_attribute_bytes": Integer("one attribute", MIN_ATTRIBUTE_BYTES),
        "max_attributes_bytes": Integer("all attributes together", MIN_ATTRIBUTE_BYTES),
    },
    nullable=True,
)

GATEWAY = Section(
    {
        "server": SERVER,
        "store": Text(
            "sqlite:///relative.db, sqlite:////absolute.db or postgresql://...",
            r"^([Ss][Qq][Ll][Ii][Tt][Ee]|[Pp][Oo][Ss][Tt][Gg][Rr][Ee][Ss]([Qq][Ll])?)://",
        ),
        "schemas": Text("folder of JSON Schemas for event data, relative to this file"),
        "sources": FILES,
        "subscriptions": FILES,
        "validation": VALIDATION,
        "dedupe_window": Duration("(source, id) seen within it is not delivered again"),
        "retention": Duration("delivered and dead-lettered events are kept this long"),
        "defaults": DEFAULTS,
        "producers": ListOf(PRODUCER, "who may POST /events; absent = anyone"),
        "producer_attribute": Text(
            "extension attribute stamped with the producer's name", ATTRIBUTE_NAME
        ),
        "dispatch": DISPATCH,
        "egress": EGRESS,
        "limits": LIMITS,
        "admin": ADMIN,
        "origin": Text(
            "this gateway's DNS name, sent as WebHook-Request-Origin by subscriptions with "
            "handshake: true; default: the machine's fully qualified host name",
            DNS_NAME,
        ),
    },
    "The CloudEvents gateway's main file (config/gateway.yaml)",
    nullable=True,
)

# The file kinds `gateway schema` knows, by name.
FILES_BY_KIND: Mapping[str, Section] = {
    "config": GATEWAY,
    "subscriptions": SUBSCRIPTIONS_FILE,
    "sources": SOURCES_FILE,
}
