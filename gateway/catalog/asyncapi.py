"""The event catalog as an AsyncAPI 3.0 document.

The gateway is the application described. Its ingest endpoints are channels on the server
that it `receive`s from (`POST /events`, and `POST <path>` of each any-format source); each
subscription is a channel it `send`s to (its sink, left out: an address may hold credentials
and usually comes from the environment). Every event type is a message in
`components.messages`: its payload is the type's JSON Schema (draft 2020-12, so marked with its
`schemaFormat`), its headers the CloudEvents binary-mode `ce-*` headers it carries.
"""

from __future__ import annotations

import re
from typing import Any

from gateway import __version__
from gateway.catalog.model import Catalog, EventType

SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
# Any event with no schema of its own, on channels that may carry such events.
GENERIC = "cloudevent"
_KEY = re.compile(r"[^\w.\-]")


def _key(text: str) -> str:
    """A component or channel key (AsyncAPI 3.0: `^[\\w\\d\\.\\-_]+$`)."""
    return _KEY.sub("_", text)


def _headers(kind: str | None) -> dict[str, Any]:
    # CE HTTP binding 3.1.3: binary mode carries the attributes as ce-* headers.
    ce_type: dict[str, Any] = {"type": "string"}
    if kind is not None:
        ce_type["const"] = kind
    return {
        "type": "object",
        "required": ["ce-specversion", "ce-id", "ce-source", "ce-type"],
        "properties": {
            "ce-specversion": {"type": "string", "const": "1.0"},
            "ce-id": {"type": "string", "minLength": 1},
            "ce-source": {"type": "string", "minLength": 1},
            "ce-type": ce_type,
        },
    }


def _message(t: EventType) -> dict[str, Any]:
    message: dict[str, Any] = {"name": t.type, "title": t.type, "headers": _headers(t.type)}
    if t.schema is not None:
        if t.schema.title:
            message["summary"] = t.schema.title
        if t.schema.description:
            message["description"] = t.schema.description
        message["contentType"] = "application/json"
        message["payload"] = {"schemaFormat": SCHEMA_FORMAT, "schema": t.schema.document}
    if t.versions:
        versions = ", ".join(v.id or v.file for v in t.versions)
        message["x-dataschema-versions"] = versions
    return message


def _channel(address: str | None, description: str, keys: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in keys},
    }


def _operation(action: str, channel: str, keys: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "summary": summary,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{k}"} for k in keys],
    }


def render(catalog: Catalog) -> dict[str, Any]:
    config = catalog.config
    messages = {_key(t.type): _message(t) for t in catalog.types}
    open_types = catalog.unknown_types == "accept" or bool(catalog.patterns)
    if open_types:
        messages[GENERIC] = {
            "name": GENERIC,
            "title": "Any CloudEvent without a schema",
            "headers": _headers(None),
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    ingest = list(messages)
    channels["events"] = _channel(
        "/events", "POST /events: CloudEvents in binary, structured or batched mode", ingest
    )
    operations["publishEvents"] = _operation(
        "receive", "events", ingest, "Producers publish events; 202 once they are stored"
    )
    for source in config.sources:
        keys = [_key(t.type) for t in catalog.types
                if any(p.kind == "source" and p.name == source.name for p in t.publishers)]
        if any(p.source == source.name for p in catalog.patterns):
            keys.append(GENERIC)
        channel = _key(f"source-{source.name}")
        channels[channel] = _channel(
            source.path, f"POST {source.path}: {source.name}'s webhooks, mapped to CloudEvents",
            keys,
        )
        operations[_key(f"receive-{source.name}")] = _operation(
            "receive", channel, keys, f"The gateway receives {source.name}'s webhooks"
        )
    for sub in config.subscriptions:
        keys = [_key(t.type) for t in catalog.types
                if any(r.subscription == sub.name for r in t.receivers)]
        if open_types and not sub.types:
            keys.append(GENERIC)
        channel = _key(f"subscription-{sub.name}")
        described = f"The sink of subscription {sub.name} ({sub.delivery.mode} mode)"
        channels[channel] = _channel(None, described, keys)
        operations[_key(f"deliver-{sub.name}")] = _operation(
            "send", channel, keys, f"Deliver matching events to {sub.name}"
        )
    scheme = "https" if config.server.tls else "http"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CloudEvents gateway",
            "version": __version__,
            "description": "Event catalog generated by `gateway catalog --format asyncapi`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": f"{config.server.host}:{config.server.port}",
                "protocol": scheme,
                "description": "Ingest: producers and webhook providers POST here",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
