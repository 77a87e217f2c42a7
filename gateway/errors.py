"""One exception root for the gateway; each subclass knows its HTTP status and problem title.

The ingest middleware maps every `GatewayError` to an RFC 9457 `application/problem+json`
response in one place (`gateway.ingest.problems`); nothing else builds error responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Violation:
    """One schema or template violation: a JSON pointer into the event data and what is wrong."""

    pointer: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail}


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal-error"
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        detail: str,
        *,
        index: int | None = None,
        errors: Sequence[Violation] = (),
        truncated: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.index = index
        self.errors = tuple(errors)
        self.truncated = truncated  # `errors` lists only some of the violations
        self.headers = {**self.default_headers, **(headers or {})}

    def at(self, index: int) -> GatewayError:
        """Record the 0-based position of the offending event in a batch."""
        self.index = index
        return self

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://cloudevents-gateway.dev/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.index is not None:
            body["index"] = self.index
        if self.errors:
            body["errors"] = [e.as_json() for e in self.errors]
        if self.truncated:
            body["truncated"] = True
        return body


class InvalidEvent(GatewayError):
    """Malformed body or an event that breaks the CloudEvents rules."""

    status = 400
    title = "Invalid CloudEvent"
    slug = "invalid-event"


class BadRequest(GatewayError):
    """An admin request that cannot be carried out as asked (a bad time, filter or body)."""

    status = 400
    title = "Bad request"
    slug = "bad-request"


class Unauthorized(GatewayError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(GatewayError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(GatewayError):
    status = 404
    title = "Not found"
    slug = "not-found"


class RequestTimeout(GatewayError):
    """The request body did not arrive within `server.body_timeout`."""

    status = 408
    title = "Request timeout"
    slug = "request-timeout"
    default_headers: ClassVar[Mapping[str, str]] = {"Connection": "close"}


class PayloadTooLarge(GatewayError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UnsupportedMediaType(GatewayError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class SchemaViolation(GatewayError):
    """`data` fails its JSON Schema, or the type has no schema under `unknown_types: reject`."""

    status = 422
    title = "Event data does not match its schema"
    slug = "schema-violation"


class Backpressure(GatewayError):
    """The delivery backlog is over its high-water mark."""

    status = 429
    title = "Too many pending deliveries"
    slug = "backpressure"


class StoreUnavailable(GatewayError):
    """The store cannot be read or written; the request can be retried later."""

    status = 503
    title = "Store unavailable"
    slug = "store-unavailable"
    default_headers: ClassVar[Mapping[str, str]] = {"Retry-After": "5"}


class ConfigError(Exception):
    """The configuration is invalid; carries every problem found (see `gateway.config`)."""

    def __init__(self, problems: Sequence[Any]) -> None:
        super().__init__(f"{len(problems)} configuration problem(s)")
        self.problems = list(problems)
