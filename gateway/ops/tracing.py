"""OpenTelemetry tracing, with the optional `[otel]` extra: a span per ingest request and per
delivery attempt.

The only module that imports OpenTelemetry. Without the extra installed, or with it installed
but no tracer provider set up, `middlewares()` is empty and `attempt()` hands out one shared
no-op: no tracing code runs.

Trace context (CE distributed tracing extension; W3C Trace Context):
- an ingest span continues the HTTP `traceparent` header of the request (the transport's trace);
- an attempt span is a child of the event's own `traceparent` extension when it has one (the
  trace the event started), else a new trace;
- the attempt's HTTP `traceparent`/`tracestate` headers carry the attempt span. The event's
  extension is never touched: in binary mode it travels as `ce-traceparent`, in structured and
  batch mode inside the body, exactly as received (the extension carries the starting trace and
  MUST NOT be updated per hop).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any

from aiohttp import web

from gateway import __version__

log = logging.getLogger("gateway")

try:
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the [otel] extra is not installed
    INSTALLED = False
else:
    INSTALLED = True
    _PROPAGATOR = TraceContextTextMapPropagator()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_TRACE_HEADERS = ("traceparent", "tracestate")
_state: dict[str, Any] = {"provider": None, "owned": False}


def active() -> bool:
    """True when spans are recorded: the extra is installed and a tracer provider is set up
    (by `configure`, `use`, or the process's global provider, e.g. `opentelemetry-instrument`)."""
    if not INSTALLED:
        return False
    if _state["provider"] is not None:
        return True
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def use(provider: Any | None) -> None:
    """Record spans with this SDK `TracerProvider` (None: back to the global one)."""
    _state["provider"] = provider
    _state["owned"] = False


def configure(env: Mapping[str, str]) -> str | None:
    """Set up the SDK from the standard variables when `OTEL_TRACES_EXPORTER` names exporters
    (`otlp`, `console`, ... as installed; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and
    the exporter's own `OTEL_EXPORTER_*` apply). Returns what was set up, for the log."""
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if not INSTALLED or not names or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed")
        return None
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "gateway")})
    provider = TracerProvider(resource=resource)
    found = []
    for name in names:
        points = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not points:
            log.warning("tracing: no span exporter named %r is installed", name)
            continue
        exporter = next(iter(points)).load()()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        found.append(name)
    if not found:
        return None
    _state["provider"] = provider
    _state["owned"] = True
    return ", ".join(found)


def shutdown() -> None:
    """Flush and stop the provider `configure` set up (spans still queued are exported)."""
    provider = _state["provider"]
    if provider is not None and _state["owned"]:
        provider.shutdown()
        _state["provider"] = None
        _state["owned"] = False


def _tracer() -> Any:
    provider = _state["provider"]
    if provider is not None:
        return provider.get_tracer("gateway", __version__)
    return trace.get_tracer("gateway", __version__)


# -- ingest -------------------------------------------------------------------------------------


def middlewares() -> list[Any]:
    """The ingest span's middleware when tracing is active, else nothing."""
    return [_ingest_span] if active() else []


@web.middleware
async def _ingest_span(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "GET":  # health and metrics probes are not ingest
        return await handler(request)
    route = request.match_info.route.resource
    where = route.canonical if route is not None else request.path
    attributes = {"http.request.method": request.method, "url.path": request.path,
                  "http.route": where}  # fmt: skip
    parent = _PROPAGATOR.extract(carrier={k: request.headers[k] for k in _TRACE_HEADERS
                                          if k in request.headers})  # fmt: skip
    with _tracer().start_as_current_span(
        f"{request.method} {where}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _status(span, exc.status)
            raise
        _status(span, response.status)
        return response


def _status(span: Any, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


# -- delivery attempts --------------------------------------------------------------------------


class Attempt:
    """What the sender reports of one attempt; the no-op takes it and does nothing."""

    __slots__ = ()

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def outcome(self, status: int | None, error: str | None) -> None:
        return None


_NOOP = Attempt()


def attempt(
    subscription: str,
    attributes: Mapping[str, object],
    number: int,
    headers: MutableMapping[str, str],
    *,
    dead_letter: bool = False,
) -> Attempt:
    """A span for one delivery attempt of the event with these attributes, child of its
    `traceparent` extension; sets the request's `traceparent`/`tracestate` headers to it."""
    if not active():
        return _NOOP
    return _Span(subscription, attributes, number, headers, dead_letter)


class _Span(Attempt):
    __slots__ = ("_scope", "_span")

    def __init__(
        self,
        subscription: str,
        attributes: Mapping[str, object],
        number: int,
        headers: MutableMapping[str, str],
        dead_letter: bool,
    ) -> None:
        carrier = {k: v for k in _TRACE_HEADERS if isinstance(v := attributes.get(k), str)}
        # No extension: a trace of its own, not whatever context the dispatcher runs in.
        parent = _PROPAGATOR.extract(carrier=carrier) if carrier else Context()
        self._span = _tracer().start_span(
            f"{'dead-letter' if dead_letter else 'deliver'} {subscription}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                "gateway.subscription": subscription,
                "gateway.attempt": number,
                # OpenTelemetry semantic conventions for CloudEvents
                "cloudevents.event_id": str(attributes.get("id", "")),
                "cloudevents.event_source": str(attributes.get("source", "")),
                "cloudevents.event_type": str(attributes.get("type", "")),
                "http.request.method": "POST",
            },
        )
        for name in _TRACE_HEADERS:
            headers.pop(name, None)
        _PROPAGATOR.inject(headers, context=trace.set_span_in_context(self._span))

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self._span.record_exception(exc)
            self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        self._span.end()

    def outcome(self, status: int | None, error: str | None) -> None:
        if status is not None:
            self._span.set_attribute("http.response.status_code", status)
        if status is None or not 200 <= status < 300:
            self._span.set_status(Status(StatusCode.ERROR, error or f"HTTP {status}"))
