"""Dry run of a source's mapping (`gateway route --source NAME --body FILE --header K:V`).

Builds the CloudEvent a request would become, exactly as `POST /sources/<name>` does but
without the signature check, the store or the network. Errors are the same `GatewayError`s
the endpoint answers with: `NotFound` (no such source), `InvalidEvent` (malformed body or an
attribute that breaks the CloudEvents rules) and `TemplateUnresolved` (422, `errors` names each
reference tried). A URL-check request (Slack's url_verification) is mapped like any other.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from gateway.config.model import Config
from gateway.errors import NotFound
from gateway.event import Event
from gateway.ingest.sources import bodies
from gateway.ingest.sources.mapping import normalize
from gateway.sources.templates import Inputs, first_values

# Provider webhooks are JSON far more often than not; a dry run without a Content-Type
# header reads the body as JSON rather than as opaque bytes.
DEFAULT_CONTENT_TYPE = bodies.JSON


def preview(
    config: Config,
    source_name: str,
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
) -> Event:
    """The CloudEvent `body` with `headers` (any case) and `query` would become at the source."""
    source = next((s for s in config.sources if s.name == source_name), None)
    if source is None:
        known = ", ".join(s.name for s in config.sources) or "none"
        raise NotFound(f"no source named {source_name!r} is configured (known: {known})")
    lower = first_values(headers.items(), lower=True)
    given = bodies.request_content_type(headers.items())
    parsed = bodies.decode(
        given if given is not None else DEFAULT_CONTENT_TYPE, body, source.payload_field
    )
    inputs = Inputs(lower, dict(query or {}), parsed.view)
    return normalize(source, inputs, parsed, lambda: str(uuid.uuid4()))
