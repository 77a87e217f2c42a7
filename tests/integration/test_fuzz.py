"""Property tests against the real app: hypothesis writes the requests.

- Fuzz: any body, headers, content type, content encoding (gzip, deflate, garbage) and nesting
  gets a non-5xx answer, and every 4xx is problem+json.
- Round trip: any JSON text sent as structured-mode `data` reaches a binary-mode subscriber
  byte for byte and a structured-mode subscriber inside the same bytes; the cloudevents SDK,
  decoding the structured delivery, agrees with Python's own reading of the text.

Hypothesis drives synchronous test functions, so each test runs the gateway and the subscriber
on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import uuid
import zlib
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import assemble, build
from gateway.config.loader import load
from gateway.schemas import SchemaRegistry
from tests.integration.conftest import FAST_RETRY, ORDER_SCHEMA, write_deployment
from tests.integration.events import received_event
from tests.integration.subscriber import Received, Subscriber

T = TypeVar("T")
PROBLEM = "application/problem+json"
STRUCTURED = "application/cloudevents+json"
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


class Harness:
    """The real gateway app and a real subscriber, on a private event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.subscriber = Subscriber()
        self.client: TestClient[Any, Any] | None = None
        self.sink: TestServer | None = None

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    async def start(self, root: Path, gateway: dict[str, Any] | None = None) -> None:
        self.sink = TestServer(self.subscriber.app)
        await self.sink.start_server()
        base = str(self.sink.make_url("")).rstrip("/")
        subs = [
            {"name": mode, "sink": f"{base}/{mode}",
             "delivery": {"mode": mode, "retry": FAST_RETRY}}
            for mode in ("binary", "structured")
        ]  # fmt: skip
        sources = [{"name": "open", "verify": {"kind": "none"},
                    "event": {"type": "com.example.src", "source": "/src"}}]  # fmt: skip
        path = write_deployment(root, subs, gateway,
                                {"com.example.order.created": ORDER_SCHEMA}, sources)  # fmt: skip
        config = load(path, env={})
        registry, problems = SchemaRegistry.load(config.schemas)
        assert not problems, problems
        self.client = TestClient(TestServer(build(assemble(config, registry))))
        await self.client.start_server()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.sink is not None:
            await self.sink.close()


@contextmanager
def harness(root: Path, gateway: dict[str, Any] | None = None) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    h = Harness(loop)
    try:
        h.run(h.start(root, gateway))
        yield h
    finally:
        h.run(h.close())
        loop.close()


# -- fuzz --------------------------------------------------------------------------------------

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from([
        STRUCTURED, "application/cloudevents-batch+json", "application/json",
        "application/cloudevents+json; charset=latin-1", "application/cloudevents+avro",
        "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "application/xml",
        "application/octet-stream", "multipart/form-data; boundary=x", "", "garbage",
    ]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)  # fmt: skip
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
CE_NAMES = st.sampled_from(["id", "source", "specversion", "type", "time", "dataschema",
                            "subject", "datacontenttype", "ext", "Bad_Name", ""])  # fmt: skip
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int, inner: bytes) -> bytes:
    return b"[" * depth + inner + b"]" * depth


@st.composite
def event_documents(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "/fuzz",
        "type": draw(st.sampled_from(["com.example.order.created", "com.example.fuzz"])),
    }  # fmt: skip
    for _ in range(draw(st.integers(0, 3))):
        doc[draw(CE_NAMES)] = draw(JSON_VALUES)
    if draw(st.booleans()):
        doc["data"] = draw(JSON_VALUES)
    if draw(st.booleans()):
        doc.pop(draw(st.sampled_from(["id", "source", "specversion", "type"])), None)
    return doc


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "event", "batch", "json", "deep", "deepdata", "cut"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "event":
        return json.dumps(draw(event_documents())).encode("utf-8", "surrogatepass")
    if kind == "batch":
        items = draw(st.lists(event_documents(), max_size=3))
        return json.dumps(items).encode("utf-8", "surrogatepass")
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode("utf-8", "surrogatepass")
    depth = draw(st.integers(100, 1200))
    if kind == "deep":
        return _nested(depth, b"")
    if kind == "deepdata":
        head = json.dumps({"specversion": "1.0", "id": "d", "source": "/f", "type": "t"})
        return head[:-1].encode() + b', "data": ' + _nested(depth, b"1") + b"}"
    whole = json.dumps(draw(event_documents())).encode("utf-8", "surrogatepass")
    return whole[: draw(st.integers(0, len(whole)))]


def encode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body  # no encoding, or a Content-Encoding that the body does not have


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    headers: dict[str, str] = {}
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers["Content-Type"] = content_type
    for _ in range(draw(st.integers(0, 3))):
        headers["ce-" + draw(CE_NAMES)] = draw(HEADER_TEXT)
    if draw(st.booleans()):
        headers["Authorization"] = draw(st.sampled_from(["Bearer ", "Basic x", "Bearer a b"]))
    encoding = draw(st.sampled_from([None, "gzip", "deflate", "garbage-gzip", "garbage-deflate",
                                     "identity", "x-unknown"]))  # fmt: skip
    body = draw(bodies())
    if encoding is not None:
        headers["Content-Encoding"] = encoding.removeprefix("garbage-")
        body = body if encoding.startswith("garbage-") else encode(body, encoding)
    path = draw(st.sampled_from(["/events", "/events", "/events", "/sources/open",
                                 "/sources/missing"]))  # fmt: skip
    return {"path": path, "data": body, "headers": headers}


async def _exchange(h: Harness, request: dict[str, Any]) -> tuple[int, str, bytes]:
    assert h.client is not None
    resp = await h.client.post(
        request["path"],
        data=request["data"],
        headers=request["headers"],
        skip_auto_headers=["Content-Type"],
    )
    return resp.status, resp.content_type, await resp.read()


def test_fuzzed_requests_get_4xx_problems_never_5xx(tmp_path: Path) -> None:
    with harness(tmp_path) as h:

        @SETTINGS
        @given(requests())
        def one(request: dict[str, Any]) -> None:
            status, content_type, body = h.run(_exchange(h, request))
            assert status < 500, (request, body)
            if status >= 400:
                assert content_type == PROBLEM, (request, status, body)
                assert json.loads(body)["status"] == status

        one()
        assert h.client is not None
        assert h.run(h.client.get("/healthz")).status == 200


# -- round trip of JSON text -------------------------------------------------------------------


def _number_texts(value: int | float) -> st.SearchStrategy[str]:
    """Spellings of one number, as producers write them."""
    if isinstance(value, int):
        forms = [str(value)]
        if value == 0:
            forms.append("-0")
        elif abs(value) < 10**15 and value % 100 == 0:
            forms += [f"{value // 100}E2", f"{value // 100}e+2"]
        return st.sampled_from(forms)
    forms = [repr(value), json.dumps(value)]
    if value == 0:
        forms += ["-0.0", "0.0e0"]
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        forms += [f"{int(value)}.0", f"{int(value)}.00", f"{int(value)}E0"]
    return st.sampled_from(forms)


_WS = st.sampled_from(["", "", " ", "\n", "\t", "  ", "\r\n "])


@st.composite
def json_texts(draw: st.DrawFn, value: Any) -> str:
    """The JSON text of `value`, spelled in one of the many ways a producer may spell it."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return draw(_number_texts(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=draw(st.booleans())).replace(
            "/", draw(st.sampled_from(["/", "\\/"]))
        )
    if isinstance(value, list):
        parts = [draw(_WS) + draw(json_texts(item)) + draw(_WS) for item in value]
        return "[" + ",".join(parts) + "]" if parts else "[" + draw(_WS) + "]"
    members = [
        draw(_WS) + json.dumps(key) + draw(_WS) + ":" + draw(_WS) + draw(json_texts(item))
        + draw(_WS)
        for key, item in value.items()
    ]  # fmt: skip
    return "{" + ",".join(members) + "}" if members else "{" + draw(_WS) + "}"


ROUND_TRIP_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=15,
)  # fmt: skip


@st.composite
def data_texts(draw: st.DrawFn) -> str:
    return draw(json_texts(draw(ROUND_TRIP_VALUES)))


async def _round_trip(h: Harness, text: str, data_first: bool, ws: str) -> tuple[Received, ...]:
    assert h.client is not None
    event_id = str(uuid.uuid4())
    attrs = (f'"specversion":"1.0","id":"{event_id}","source":"/prop",'
             '"type":"com.example.prop","datacontenttype":"application/json"')  # fmt: skip
    member = f'"data"{ws}:{ws}{text}{ws}'
    body = "{" + (f"{member},{attrs}" if data_first else f"{attrs},{member}") + "}"
    resp = await h.client.post("/events", data=body.encode("utf-8"),
                               headers={"Content-Type": STRUCTURED})  # fmt: skip
    assert resp.status == 202, await resp.text()
    binary = await h.subscriber.wait_for_id("/binary", event_id)

    def arrived() -> list[Received]:
        return [r for r in h.subscriber.at("/structured") if event_id.encode() in r.body]

    await h.subscriber.until(lambda: bool(arrived()), 10, f"{event_id} at /structured")
    return binary, arrived()[0]


def test_any_json_data_round_trips_byte_for_byte(tmp_path: Path) -> None:
    with harness(tmp_path) as h:

        @settings(SETTINGS, max_examples=60)
        @given(data_texts(), st.booleans(), _WS)
        def one(text: str, data_first: bool, ws: str) -> None:
            binary, structured = h.run(_round_trip(h, text, data_first, ws))
            sent = text.encode("utf-8")
            assert binary.body == sent
            assert structured.body.endswith(b'"data":' + sent + b"}")
            # Independent oracles: the SDK decodes the deliveries, Python's json the text sent.
            expected = json.loads(text)
            assert received_event(structured).get_data() == expected
            assert received_event(binary).get_data() == expected

        one()
