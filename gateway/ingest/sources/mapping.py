"""Normalize: one verified provider request -> one CloudEvent, by the source's templates.

Each attribute takes the first of its templates that resolves. `type`, `source` and a
templated `id` are required: when none of their templates resolves, the request fails with 422
and one error per reference tried. Other attributes (`subject`, `time`, `dataschema`,
extensions) are left out instead. Without an `id` template the gateway mints a UUID.
Conversions: a template that is one reference to a number or boolean gives an extension an
Integer or Boolean; `time` from a number reads it as Unix seconds (RFC 3339, UTC); every other
value is text. The attributes then pass the same CloudEvents checks as `/events`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from gateway.attributes import validate
from gateway.config.model import Source
from gateway.errors import GatewayError, InvalidEvent, Violation
from gateway.event import SPECVERSION, AttributeValue, Event
from gateway.ingest.sources.bodies import Body
from gateway.sources.templates import Inputs, Template, Unusable, as_text, resolve

REQUIRED = ("id", "source", "type")
_CORE = ("id", "source", "type", "subject", "time", "dataschema")
# CE core, Type System, Integer: signed 32-bit.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class TemplateUnresolved(GatewayError):
    """A required attribute's template cannot be resolved from the request (CONTRACT 3, 422)."""

    status = 422
    title = "Source template cannot be resolved"
    slug = "template-unresolved"


def _unix_time(seconds: float) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent(f"attribute 'time' is {seconds!r}, not a Unix time in seconds") from None
    return moment.isoformat().replace("+00:00", "Z")


def _convert(name: str, value: str | int | float | bool) -> AttributeValue:
    if name == "time" and isinstance(value, int | float) and not isinstance(value, bool):
        return _unix_time(value)
    if name in _CORE or isinstance(value, str | float):
        return as_text(value)
    if isinstance(value, bool) or _INT_MIN <= value <= _INT_MAX:
        return value
    return as_text(value)


def _first(
    name: str, templates: Iterable[Template], inputs: Inputs, failures: list[Unusable]
) -> AttributeValue | None:
    for template in templates:
        try:
            return _convert(name, resolve(template, inputs))
        except Unusable as miss:
            failures.append(miss)
    return None


def normalize(source: Source, inputs: Inputs, body: Body, mint: Callable[[], str]) -> Event:
    """The CloudEvent for one request; raises TemplateUnresolved (422) or InvalidEvent (400)."""
    raw: dict[str, object] = {"specversion": SPECVERSION}
    missing: list[str] = []
    violations: list[Violation] = []
    for name, templates in source.event:
        failures: list[Unusable] = []
        value = _first(name, templates, inputs, failures)
        if value is not None:
            raw[name] = value
        elif name in REQUIRED:
            missing.append(f"'{name}' ({'; '.join(str(miss) for miss in failures)})")
            violations.extend(
                Violation(miss.reference.pointer, f"attribute '{name}': {miss}")
                for miss in failures
            )
    if missing:
        raise TemplateUnresolved(
            f"source '{source.name}': cannot build attribute {', '.join(missing)}",
            errors=violations,
        )
    raw.setdefault("id", mint())
    if body.content_type is not None:
        raw["datacontenttype"] = body.content_type
    ordered = {name: raw.pop(name) for name in ("specversion", *REQUIRED) if name in raw}
    return Event(validate({**ordered, **raw}), body.data, body.kind, body.value)
