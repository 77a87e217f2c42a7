"""The HTTP server's connections: deadlines for slow clients, a cap on open connections, and
aiohttp's parser errors logged as one sanitized line.

aiohttp closes idle keep-alive connections (`keepalive_timeout`, passed through) but sets no
deadline on reading a request: a client sending its headers or body a byte at a time holds a
connection and a task for as long as it likes. `Connection` adds

- a header deadline, armed when the connection opens and at the first byte of each later
  request, disarmed when the request's headers are complete: on expiry the connection is closed;
- a body deadline, from the end of the headers to the end of the body (time during which the
  gateway itself paused reading does not count): on expiry the handler reading the body gets
  `RequestTimeout` (408, problem+json) and the connection is closed after the answer.

`Gate` is the server side: it counts open connections and answers those past
`server.max_connections` with a 503 before closing them, with a log line at most once a minute.
`GatewayRunner` makes aiohttp's `AppRunner` serve through them.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.config.model import Server
from gateway.errors import RequestTimeout
from gateway.ops.metrics import Metrics

log = logging.getLogger("gateway.http")

LIMIT_LOG_INTERVAL = 60.0  # seconds between two "connection limit reached" lines
_REFUSAL_BODY = (
    b'{"type":"about:blank","title":"Service Unavailable","status":503,'
    b'"detail":"too many open connections; retry later"}'
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/problem+json\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


class ParserErrors(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR with a traceback whose message repeats
    the raw request bytes, credentials included: keep one INFO line without either."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            sender = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg = "refused a malformed request: %d %s (sender=%s)"
            record.args = (exc.code, type(exc).__name__, sender)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


log.addFilter(ParserErrors())


class Gate:
    """Counts the server's open connections and refuses those past the cap."""

    def __init__(self, limit: int, metrics: Metrics | None = None) -> None:
        self.limit = limit
        self.open = 0
        self._metrics = metrics
        self._refused = 0  # since the last log line
        self._logged_at: float | None = None

    def admit(self, now: float) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        self._refused += 1
        if self._metrics is not None:
            self._metrics.inc("gateway_connections_refused_total")
        if self._logged_at is None or now - self._logged_at >= LIMIT_LOG_INTERVAL:
            log.warning(
                "connection limit reached: %d connections open (server.max_connections); "
                "refused %d with 503 since the last report",
                self.open, self._refused,
            )
            self._logged_at, self._refused = now, 0
        return False

    def release(self) -> None:
        self.open -= 1

    def timed_out(self, phase: str) -> None:
        if self._metrics is not None:
            self._metrics.inc("gateway_connections_timed_out_total", phase=phase)


class Connection(RequestHandler):
    """aiohttp's protocol for one connection, with header and body deadlines (see the module)."""

    def __init__(
        self, manager: web.Server, *, gate: Gate, server: Server, **kwargs: Any
    ) -> None:
        super().__init__(manager, keepalive_timeout=server.keepalive_timeout, **kwargs)
        self._gate = gate
        self._header_timeout = server.header_timeout
        self._body_timeout = server.body_timeout
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # a body still arriving

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._gate.admit(self._loop.time()):
            assert isinstance(transport, asyncio.Transport)
            transport.write(REFUSAL)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._header_timer = self._loop.call_later(self._header_timeout, self._header_expired)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._gate.release()
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None
        self._body = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse repeats the raw bytes as text;
        answer problem+json without them instead (logging is `ParserErrors`' job)."""
        response = super().handle_error(request, status, exc, message)
        if not isinstance(exc, HttpProcessingError):
            return response
        problem = {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": f"the request is not valid HTTP/1.1 ({type(exc).__name__})",
        }
        answer = web.Response(
            status=status, body=orjson.dumps(problem), content_type="application/problem+json"
        )
        answer.force_close()
        return answer

    def data_received(self, data: bytes) -> None:
        count, receiving = self._request_count, self._body is not None
        super().data_received(data)
        if self._request_count != count:  # the headers of a request are complete
            self._disarm_header()
            payload = self._messages[-1][1] if self._messages else None
            if isinstance(payload, StreamReader) and not payload.is_eof():
                self._body = payload
                self._arm_body()
            else:
                self._end_body()
        elif self._body is not None and self._body.is_eof():
            self._end_body()
        elif data and not receiving and self._header_timer is None:
            # The first bytes of a request; its headers have header_timeout from now.
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_expired)

    def _disarm_header(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _arm_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self._loop.call_later(self._body_timeout, self._body_expired)

    def _end_body(self) -> None:
        self._body = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self.transport is None:
            return
        if self._waiter is None or self._waiter.done():
            # A pipelined request's headers trail a request still being handled: not the
            # client's delay; look again later.
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_expired)
            return
        self._gate.timed_out("header")
        log.debug("closed a connection: request headers not complete in %ss", self._header_timeout)
        self.force_close()

    def _body_expired(self) -> None:
        self._body_timer = None
        body = self._body
        if body is None or body.is_eof() or self.transport is None:
            return
        if self._reading_paused:  # the gateway's own backpressure, not a slow client
            self._arm_body()
            return
        self._gate.timed_out("body")
        self._body = None
        request = self._current_request
        if request is None or request.content is not body:
            self.force_close()
            return
        # The handler reading the body answers 408; nothing more is read from this connection.
        self._lingering_time = 0.0
        self.close()
        body.set_exception(
            RequestTimeout(f"the request body did not arrive within {self._body_timeout:g}s")
        )


class GatedServer(web.Server):
    """aiohttp's low-level server making `Connection`s behind a `Gate`."""

    def __init__(self, base: web.Server, gate: Gate, server: Server) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self.gate = gate
        self._server = server

    def __call__(self) -> Connection:
        return Connection(
            self, loop=self._loop, gate=self.gate, server=self._server, logger=log,
            **self._kwargs,
        )


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose connections have deadlines, a cap and sanitized parser errors."""

    def __init__(
        self, app: web.Application, server: Server, metrics: Metrics | None = None, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self.gate = Gate(server.max_connections, metrics)
        self._server_config = server

    async def _make_server(self) -> web.Server:
        return GatedServer(await super()._make_server(), self.gate, self._server_config)
