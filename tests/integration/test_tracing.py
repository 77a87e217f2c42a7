"""Tracing with OpenTelemetry (the `[otel]` extra), recorded by the SDK's in-memory exporter:
a span per ingest request and per delivery attempt, W3C trace context carried as the CE
distributed-tracing extension says (the event's `traceparent` is delivered unchanged; the HTTP
`traceparent` header is the hop's)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.ops import tracing
from tests.integration.conftest import FAST_RETRY, Start, write_deployment
from tests.integration.events import binary, order, structured
from tests.integration.process import Process, free_port
from tests.integration.subscriber import Received, Subscriber

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
EXTENSION = f"00-{TRACE}-{PARENT}-01"
STATE = "congo=t61rcWkgMzE"
TRANSPORT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRANSPORT_PARENT = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


def sub(name: str, mode: str = "binary") -> dict[str, object]:
    return {"name": name, "sink": f"{{sink}}/{name}",
            "delivery": {"mode": mode, "timeout": "1s", "retry": dict(FAST_RETRY)}}


def header(got: Received, name: str) -> str | None:
    return {k.lower(): v for k, v in got.headers.items()}.get(name)


def hop(span: ReadableSpan) -> str:
    """The traceparent header value that carries this span."""
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def attempts(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    found = [s for s in exporter.get_finished_spans() if s.name == f"deliver {name}"]
    return sorted(found, key=lambda s: s.attributes["gateway.attempt"] if s.attributes else 0)


async def test_binary_mode_keeps_the_extension_and_the_hop_carries_the_attempt(
    start: Start, spans: InMemorySpanExporter
) -> None:
    gw = await start([sub("billing")])
    gw.subscriber.plan("/billing", 500, 200)
    event = order(traceparent=EXTENSION, tracestate=STATE)
    request = binary(event)
    request["headers"]["traceparent"] = f"00-{TRANSPORT_TRACE}-{TRANSPORT_PARENT}-01"
    assert (await gw.post(**request)).status == 202
    first, second = await gw.subscriber.wait_for("/billing", 2)
    await gw.subscriber.until(lambda: len(attempts(spans, "billing")) == 2, 5, "two spans")

    # The ingest span continues the producer's HTTP trace (the transport's).
    [ingest] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert ingest.name == "POST /events"
    assert ingest.parent is not None
    assert f"{ingest.parent.span_id:016x}" == TRANSPORT_PARENT
    assert f"{ingest.context.trace_id:032x}" == TRANSPORT_TRACE
    assert ingest.attributes is not None
    assert ingest.attributes["http.response.status_code"] == 202

    failed, delivered = attempts(spans, "billing")
    for span, got in ((failed, first), (delivered, second)):
        # CE distributed tracing: the extension is delivered as received ...
        assert header(got, "ce-traceparent") == EXTENSION
        assert header(got, "ce-tracestate") == STATE
        # ... and the hop's own header carries this attempt, a child of the event's trace.
        assert header(got, "traceparent") == hop(span)
        assert header(got, "tracestate") == STATE
        assert span.parent is not None
        assert f"{span.parent.span_id:016x}" == PARENT
        assert f"{span.context.trace_id:032x}" == TRACE
        assert span.kind is SpanKind.CLIENT
        assert span.attributes is not None
        assert span.attributes["cloudevents.event_id"] == event.get_id()
    assert failed.attributes is not None
    assert delivered.attributes is not None
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.status.status_code is StatusCode.ERROR
    assert delivered.attributes["http.response.status_code"] == 200
    assert delivered.status.status_code is not StatusCode.ERROR
    assert hop(failed) != hop(delivered)


async def test_structured_mode_and_an_event_without_the_extension(
    start: Start, spans: InMemorySpanExporter
) -> None:
    gw = await start([sub("orders", "structured")])
    traced = order(traceparent=EXTENSION)
    plain = order()
    assert (await gw.post(**structured(traced))).status == 202
    assert (await gw.post(**structured(plain))).status == 202
    requests = await gw.subscriber.wait_for("/orders", 2)
    await gw.subscriber.until(lambda: len(attempts(spans, "orders")) == 2, 5, "spans")
    got = {json.loads(r.body)["id"]: r for r in requests}
    span = {str(s.attributes["cloudevents.event_id"]): s
            for s in attempts(spans, "orders") if s.attributes}  # fmt: skip

    # The body as received; the hop header carries the attempt, in the event's trace.
    one = got[traced.get_id()]
    assert json.loads(one.body)["traceparent"] == EXTENSION
    assert header(one, "traceparent") == hop(span[traced.get_id()])
    assert f"{span[traced.get_id()].context.trace_id:032x}" == TRACE

    # No extension: the attempt starts a trace of its own, and the hop still carries it.
    other = got[plain.get_id()]
    assert span[plain.get_id()].parent is None
    assert "traceparent" not in json.loads(other.body)
    assert header(other, "traceparent") == hop(span[plain.get_id()])


async def test_untraced_gateway_sends_no_trace_headers(start: Start) -> None:
    """Without a tracer provider set up, nothing is traced and no hop header is invented."""
    assert not tracing.active()
    gw = await start([sub("billing")])
    event = order(traceparent=EXTENSION)
    assert (await gw.post(**binary(event))).status == 202
    [got] = await gw.subscriber.wait_for("/billing", 1)
    assert header(got, "ce-traceparent") == EXTENSION
    assert header(got, "traceparent") is None


def test_without_the_extra_nothing_is_traced() -> None:
    """As if OpenTelemetry were not installed: the gateway still builds and sends."""
    code = """
import sys
sys.modules["opentelemetry"] = None
from gateway.ops import tracing
assert tracing.INSTALLED is False and not tracing.active()
assert tracing.middlewares() == []
assert tracing.configure({"OTEL_TRACES_EXPORTER": "console"}) is None
headers = {}
with tracing.attempt("s", {"traceparent": "EXTENSION"}, 1, headers) as span:
    span.outcome(500, "HTTP 500")
assert headers == {}
import gateway.app, gateway.delivery.sender
print("ok")
""".replace("EXTENSION", EXTENSION)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_serve_exports_spans_named_by_otel_traces_exporter(
    tmp_path: Path, subscriber: tuple[Subscriber, str], processes: list[Process],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`gateway serve` sets the SDK up from the standard variables (here the SDK's own console
    exporter) and flushes what is queued when it stops."""
    recorder, sink = subscriber
    port = free_port()
    config = write_deployment(
        tmp_path, [{"name": "hooked", "sink": f"{sink}/hook"}],
        gateway={"server": {"port": port}, "dispatch": {"poll_interval": "100ms"}},
    )
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
    gateway = Process(config, port, tmp_path / "gateway.log")
    processes.append(gateway)
    await gateway.start()
    event = order(traceparent=EXTENSION)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/events", **binary(event)) as resp,
    ):
        assert resp.status == 202
    [got] = await recorder.wait_for("/hook", 1)
    gateway.kill(signal.SIGTERM)
    assert await asyncio.to_thread(gateway.wait) == 0
    log = gateway.log.read_text()
    assert "tracing: spans exported to console" in log
    assert '"name": "POST /events"' in log
    assert '"name": "deliver hooked"' in log
    assert '"service.name": "gateway-under-test"' in log
    assert f'"trace_id": "0x{TRACE}"' in log
    assert header(got, "traceparent") is not None
    assert header(got, "ce-traceparent") == EXTENSION
