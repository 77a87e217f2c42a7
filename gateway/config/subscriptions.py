"""Subscriptions and their delivery settings, read from `config/subscriptions/*.yaml`.

A subscription's `delivery` is merged over `defaults.delivery` from gateway.yaml key by key
(`retry` too); its `headers` over `defaults.headers`, name by name. Each layer is checked where
it is written, so a bad default is reported once, at its line in gateway.yaml.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from gateway import sinkurl
from gateway.config import fields as f
from gateway.config import spec
from gateway.config.expand import UNRESOLVED, Parts, contains_unresolved
from gateway.config.fields import Source
from gateway.config.model import (
    Backoff,
    Batch,
    CircuitBreaker,
    Delivery,
    Mode,
    RetryPolicy,
    Subscription,
)
from gateway.config.sizes import parse_size
from gateway.diagnostics import Problem, format_path
from gateway.routing.filters import Filter, FilterError, compile_filter

SUBSCRIPTION_KEYS = spec.keys(spec.SUBSCRIPTION)
DELIVERY_KEYS = spec.keys(spec.DELIVERY)
RETRY_KEYS = spec.keys(spec.RETRY)

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
# RFC 9110 5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RESERVED = ("content-type", "content-length", "authorization", "host")
_RESERVED_PREFIXES = ("webhook-", "ce-")


@dataclass(frozen=True)
class Layer:
    """The delivery keys one file sets (already checked), before merging."""

    delivery: dict[str, Any] = field(default_factory=dict)
    retry: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, Any] | None = None  # None: `batch` not written in this layer


def read_layer(src: Source, value: Any, parts: Parts) -> Layer:
    """Check a `delivery` mapping and keep the keys it sets."""
    raw = f.section(src, value, parts, DELIVERY_KEYS)
    delivery: dict[str, Any] = {}
    for key in ("mode", "timeout", "max_in_flight", "dead_letter"):
        if key not in raw:
            continue
        checked = _delivery_value(src, key, raw[key], (*parts, key))
        # `dead_letter: null` removes a dead letter set by the defaults.
        if checked is not None or (key == "dead_letter" and raw[key] is None):
            delivery[key] = checked
    if "rate_limit" in raw:
        rate = _rate(src, raw["rate_limit"], (*parts, "rate_limit"))
        if rate is not None:
            delivery["rate_limit"] = rate
    if "circuit_breaker" in raw:
        breaker = _breaker(src, raw["circuit_breaker"], (*parts, "circuit_breaker"))
        if breaker is not _INVALID:
            delivery["circuit_breaker"] = breaker
    if "handshake" in raw:  # CONTRACT 5, the CE webhook validation handshake
        if isinstance(raw["handshake"], bool):
            delivery["handshake"] = raw["handshake"]
        else:
            src.report((*parts, "handshake"), "must be true or false")
    if "ordering" in raw:
        attribute = _ordering(src, raw["ordering"], (*parts, "ordering"))
        if attribute is not None:
            delivery["ordering"] = attribute
    retry = _retry(src, raw["retry"], (*parts, "retry")) if "retry" in raw else {}
    batch = _batch(src, raw["batch"], (*parts, "batch")) if "batch" in raw else None
    return Layer(delivery, retry, batch)


_INVALID = object()
_RATE = re.compile(spec.RATE_LIMIT)


def _rate(src: Source, value: Any, parts: Parts) -> float | None:
    """`50/s` or `300/m` as requests per second."""
    text = f.string(src, value, parts)
    if text is None:
        return None
    if not _RATE.fullmatch(text.strip()):
        src.report(parts, "must be a rate like 50/s or 300/m")
        return None
    count, unit = text.strip().split("/")
    rate = float(count) / (60.0 if unit == "m" else 1.0)
    if rate <= 0:
        src.report(parts, "must be more than 0")
        return None
    return rate


_ATTRIBUTE = re.compile(spec.ATTRIBUTE_NAME)


def _ordering(src: Source, value: Any, parts: Parts) -> str | None:
    """`{key: <attribute>}`: the key must be a CloudEvents attribute name (CE 1.0, "Attribute
    Naming Convention": lower-case a-z and digits 0-9)."""
    raw = f.section(src, value, parts, spec.keys(spec.ORDERING)) if value is not None else None
    if raw is None or "key" not in raw:
        if value is None or isinstance(value, dict):
            src.report(parts, "must name the attribute, like {key: partitionkey}")
        return None
    key = f.string(src, raw["key"], (*parts, "key"))
    if key is None:
        return None
    if not _ATTRIBUTE.fullmatch(key):
        src.report(
            (*parts, "key"),
            f"{key!r} is not a CloudEvents attribute name (lower-case letters a-z and digits 0-9)",
        )
        return None
    if key == "data":
        src.report((*parts, "key"), "'data' is the event's payload, not an attribute")
        return None
    return key


def _breaker(src: Source, value: Any, parts: Parts) -> Any:
    """`off`/`false` disables; `on`/`true` or a mapping (over the defaults) enables."""
    if isinstance(value, bool):
        return CircuitBreaker() if value else None
    raw = f.section(src, value, parts, spec.keys(spec.CIRCUIT_BREAKER))
    out: dict[str, Any] = {}
    for key in spec.keys(spec.CIRCUIT_BREAKER):
        if key in raw:
            checked = f.scalar(src, spec.CIRCUIT_BREAKER.keys[key], raw[key], (*parts, key))
            if checked is None:
                return _INVALID
            out[key] = checked
    return CircuitBreaker(**out)


def _delivery_value(src: Source, key: str, value: Any, parts: Parts) -> Any:
    if key == "mode":
        return _mode(src, value, parts)
    if key == "dead_letter":
        return None if value is None else f.http_url(src, value, parts)
    return f.scalar(src, spec.DELIVERY.keys[key], value, parts)


def _mode(src: Source, value: Any, parts: Parts) -> Mode | None:
    checked = f.scalar(src, spec.DELIVERY.keys["mode"], value, parts)
    return None if checked is None else Mode(checked)


def _batch(src: Source, value: Any, parts: Parts) -> dict[str, Any]:
    """`batch: {max_events, max_bytes, linger}` (CONTRACT 5), the keys it sets."""
    raw = f.section(src, value, parts, spec.keys(spec.BATCH))
    out: dict[str, Any] = {}
    if "max_events" in raw:
        node = spec.BATCH.keys["max_events"]
        out["max_events"] = f.scalar(src, node, raw["max_events"], (*parts, "max_events"))
    if "max_bytes" in raw:
        out["max_bytes"] = _size(src, raw["max_bytes"], (*parts, "max_bytes"))
    if "linger" in raw:
        at = (*parts, "linger")
        linger = f.duration(src, raw["linger"], at)
        if linger is not None and linger > spec.MAX_LINGER:
            src.report(at, f"must be at most {spec.MAX_LINGER:g}s")
            linger = None
        out["linger"] = linger
    return {key: v for key, v in out.items() if v is not None}


def _size(src: Source, value: Any, parts: Parts) -> int | None:
    """A byte count: `1048576`, `1MiB`, `512KiB`, `64kB`."""
    if value is UNRESOLVED:
        return None
    if isinstance(value, str):
        try:
            value = parse_size(value)
        except ValueError:
            src.report(parts, "must be a size like 1MiB, 512KiB or a number of bytes")
            return None
    return f.integer(src, value, parts, 1, spec.MAX_BATCH_BYTES)


def _retry(src: Source, value: Any, parts: Parts) -> dict[str, Any]:
    raw = f.section(src, value, parts, RETRY_KEYS)
    out: dict[str, Any] = {}
    for key in RETRY_KEYS:
        if key not in raw:
            continue
        v, at = raw[key], (*parts, key)
        if key == "schedule":
            checked: Any = _schedule(src, v, at)
        else:
            checked = f.scalar(src, spec.RETRY.keys[key], v, at)
            if key == "backoff" and checked is not None:
                checked = Backoff(checked)
        if checked is not None:
            out[key] = checked
    return out


def _schedule(src: Source, value: Any, parts: Parts) -> tuple[float, ...] | None:
    items = f.sequence(src, value, parts)
    if items is None:
        return None
    if not items:
        src.report(parts, "must list at least one delay")
        return None
    delays = [f.duration(src, item, (*parts, i)) for i, item in enumerate(items)]
    return None if None in delays else tuple(d for d in delays if d is not None)


def merge(defaults: Layer, own: Layer) -> Delivery:
    """`defaults` then `own`, key by key. A `schedule` without `max_attempts` in its own layer
    or a later one means `len(schedule) + 1` attempts (CONTRACT 1, retry.schedule)."""
    retry = {**defaults.retry, **own.retry}
    counted = "max_attempts" in (own.retry if "schedule" in own.retry else retry)
    if "schedule" in retry and not counted:
        retry["max_attempts"] = len(retry["schedule"]) + 1
    delivery = {**defaults.delivery, **own.delivery}
    if defaults.batch is not None or own.batch is not None:
        delivery["batch"] = Batch(**{**(defaults.batch or {}), **(own.batch or {})})
    return Delivery(**delivery, retry=RetryPolicy(**retry))


def check_batch(src: Source, parts: Parts, sink: str, delivery: Delivery, own: Layer) -> None:
    """Batch delivery is solicited (CE HTTP binding 3.3): `batch` needs `mode: batch`; and
    only HTTP has a batched mode (the NATS, AMQP and MQTT bindings define none)."""
    at: Parts = (*parts, "delivery")
    if delivery.mode is not Mode.BATCH:
        if own.batch is not None:
            src.report((*at, "batch"), "batch settings need 'mode: batch'")
        return
    if sinkurl.is_broker(sink):
        scheme = sink.split(":", 1)[0]
        src.report(
            (*at, "mode") if "mode" in own.delivery else (*parts, "sink"),
            f"mode: batch needs an http(s) sink; the {scheme}:// binding has no batched mode",
        )


Headers = dict[str, tuple[str, str]]


def read_headers(src: Source, value: Any, parts: Parts) -> Headers:
    """Extra request headers as (name, value), keyed by lower-case name (a later layer replaces
    a header by name, whatever its case)."""
    raw = f.mapping(src, value, parts)
    out: Headers = {}
    for name, v in (raw or {}).items():
        at = (*parts, name)
        lower = name.lower()
        if not _TOKEN.fullmatch(name):
            src.report(at, "is not a valid header name")
        elif lower in _RESERVED or lower.startswith(_RESERVED_PREFIXES):
            src.report(at, f"header '{name}' is set by the gateway and cannot be configured")
        elif isinstance(v, int) and not isinstance(v, bool):
            out[lower] = (name, str(v))
        elif f.string(src, v, at) is not None:
            if any(c in v for c in "\r\n\0"):
                src.report(at, "must not contain line breaks")
            else:
                out[lower] = (name, v)
    return out


def read_subscription(
    src: Source, value: Any, parts: Parts, defaults: Layer, default_headers: Headers
) -> Subscription | None:
    """One `subscriptions[i]` entry, or None after reporting its problems."""
    raw = f.mapping(src, value, parts)
    if raw is None:
        return None
    before = len(src.problems)
    f.check_keys(src, raw, parts, SUBSCRIPTION_KEYS)
    name = _required(src, raw, parts, "name")
    if name is not None and not _NAME.fullmatch(name):
        src.report((*parts, "name"), "must match [a-z0-9][a-z0-9_-]* (lower-case)")
    sink = _required(src, raw, parts, "sink")
    sink = None if sink is None else f.http_url(src, sink, (*parts, "sink"))
    types = _types(src, raw, parts)
    source = f.string(src, raw["source"], (*parts, "source")) if "source" in raw else None
    filters = _filters(src, raw.get("filters"), (*parts, "filters"))
    layer = read_layer(src, raw["delivery"], (*parts, "delivery")) if "delivery" in raw else Layer()
    headers = {**default_headers}
    if "headers" in raw:
        headers.update(read_headers(src, raw["headers"], (*parts, "headers")))
    bearer = _secret(src, raw, parts, "auth", spec.keys(spec.AUTH))
    secrets = _signing(src, raw.get("signing"), (*parts, "signing"))
    delivery = merge(defaults, layer)
    if sink is not None:
        check_batch(src, parts, sink, delivery, layer)
    if sink is not None and bearer is not None:
        urls = {"sink": sink, "delivery.dead_letter": delivery.dead_letter}
        _userinfo_with_auth(src, parts, urls)
    if sink is not None and delivery.handshake and sinkurl.is_broker(sink):
        # CE webhook 4: the handshake is an HTTP OPTIONS request; a broker cannot answer it.
        own = "handshake" in layer.delivery
        at = (*parts, "delivery", "handshake") if own else (*parts, "sink")
        src.report(at, "handshake: true needs an http(s) sink (the handshake is an HTTP OPTIONS)")
    if len(src.problems) > before or name is None or sink is None:
        return None
    return Subscription(
        name=name,
        sink=sink,
        types=types,
        source=source,
        filters=filters,
        delivery=delivery,
        headers=tuple(headers.values()),
        bearer=bearer,
        signing_secrets=secrets,
        file=src.file,
        line=src.located.line(parts),
        index=int(parts[-1]),
        lines=src.located.lines,
    )


def _required(src: Source, raw: dict[str, Any], parts: Parts, key: str) -> str | None:
    if key not in raw:
        src.report(parts, f"missing required key '{key}'")
        return None
    return f.string(src, raw[key], (*parts, key))


def _types(src: Source, raw: dict[str, Any], parts: Parts) -> tuple[str, ...]:
    if "types" not in raw:
        return ()
    types = f.strings(src, raw["types"], (*parts, "types"))
    if types == ():
        src.report((*parts, "types"), "must list at least one type (omit it to accept any type)")
    return types or ()


def _filters(src: Source, value: Any, parts: Parts) -> tuple[Filter, ...]:
    if value is None:
        return ()
    items = f.sequence(src, value, parts)
    out: list[Filter] = []
    for i, written in enumerate(items or ()):
        if contains_unresolved(written):
            continue
        try:
            out.append(compile_filter(written, format_path((*parts, i))))
        except FilterError as exc:
            line = src.located.line((*parts, i, *exc.parts))
            src.problems.append(Problem(src.file, line, exc.path, exc.message))
    return tuple(out)


def _secret(
    src: Source, raw: dict[str, Any], parts: Parts, block: str, known: tuple[str, ...]
) -> str | None:
    """`auth.bearer`: the only key of its block, a non-empty string."""
    (key,) = known
    if block not in raw:
        return None
    at = (*parts, block)
    inner = f.mapping(src, raw[block], at)
    if inner is None:
        return None
    f.check_keys(src, inner, at, known)
    if key not in inner:
        src.report(at, f"missing required key '{key}'")
        return None
    return f.string(src, inner[key], (*at, key))


def _signing(src: Source, value: Any, parts: Parts) -> tuple[str, ...]:
    """`signing: {secret: S}` or, while rotating, `signing: {secrets: [NEW, OLD]}`."""
    if value is None:
        return ()
    inner = f.mapping(src, value, parts)
    if inner is None:
        return ()
    f.check_keys(src, inner, parts, spec.keys(spec.SIGNING))
    if ("secret" in inner) == ("secrets" in inner):
        src.report(parts, "needs exactly one of 'secret' or 'secrets'")
        return ()
    if "secret" in inner:
        at: Parts = (*parts, "secret")
        found = f.string(src, inner["secret"], at)
        listed = [] if found is None else [(found, at)]
    else:
        items = f.sequence(src, inner["secrets"], (*parts, "secrets")) or []
        if not items:
            src.report((*parts, "secrets"), "must list at least one secret")
        listed = []
        for i, item in enumerate(items):
            found = f.string(src, item, (*parts, "secrets", i))
            if found is not None:
                listed.append((found, (*parts, "secrets", i)))
    for secret, at in listed:
        if not _is_whsec(secret):
            src.report(at, "must be 'whsec_' followed by the base64 of 24 to 64 random bytes")
    return tuple(secret for secret, _ in listed)


def _userinfo_with_auth(src: Source, parts: Parts, urls: dict[str, str | None]) -> None:
    """The client sends `user:password@` as Basic auth and refuses to add `auth.bearer` as
    well: every attempt would fail."""
    for key, text in urls.items():
        if text is None or sinkurl.is_broker(text):
            continue  # a broker's user:password@ are its credentials, not an HTTP header
        if sinkurl.has_userinfo(sinkurl.parse(text)):
            src.report(
                (*parts, "auth"),
                f"{key} has user:password@ (sent as Basic auth) and auth.bearer also sets "
                "Authorization: use one of them",
            )


def _is_whsec(secret: str) -> bool:
    # Standard Webhooks: "whsec_" + base64 of a 24..64-byte key.
    if not secret.startswith("whsec_"):
        return False
    body = secret[len("whsec_") :]
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64
