"""One HTTP delivery attempt: render, sign, POST once, classify what happened.

The sender is the edge of delivery: it owns the client session and connection pool and never
raises for network problems; it reports a `retry.Result` that `retry.decide` interprets.
Neither the subscription's credentials nor its sink's query string reach an error message.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from multidict import CIMultiDict
from yarl import URL

from gateway import __version__, redact, sinkurl
from gateway.config.model import Subscription
from gateway.delivery import retry, signing
from gateway.delivery.brokers import Brokers
from gateway.delivery.client import Client, InvalidResponse, ServerDisconnected
from gateway.delivery.egress import EgressRefused, GuardedResolver, literal_refusal
from gateway.delivery.render import Request, render
from gateway.egress import EgressPolicy
from gateway.ops import tracing
from gateway.store.base import Kind, Leased

DEFAULT_USER_AGENT = f"cloudevents-gateway/{__version__}"
# The response body is read only so the connection can be reused; never more than this.
MAX_RESPONSE_BODY = 8192

# Fixed wording for the usual network failures, so errors group well in logs and metrics.
_OS_ERRORS: tuple[tuple[type[OSError], int, str], ...] = (
    (ConnectionRefusedError, errno.ECONNREFUSED, "connection refused"),
    (ConnectionResetError, errno.ECONNRESET, "connection reset by peer"),
    (ConnectionAbortedError, errno.ECONNABORTED, "connection aborted"),
    (BrokenPipeError, errno.EPIPE, "broken pipe"),
)


@dataclass(frozen=True, slots=True)
class Answer:
    """The response to an OPTIONS request: status and lower-cased headers, or why none came."""

    status: int | None
    headers: Mapping[str, str]
    error: str | None


class Sender:
    def __init__(
        self,
        *,
        max_connections: int = 256,
        user_agent: str = DEFAULT_USER_AGENT,
        egress: EgressPolicy | None = None,
        origin: str = "localhost",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self.origin = origin  # CE webhook 4: WebHook-Request-Origin (`handshake: true`)
        self._user_agent = user_agent
        self._egress = egress or EgressPolicy()
        self._ssl = ssl_context  # None: the system's trust store
        self._client: Client | None = None
        self._identity = ""
        # nats://, amqp:// and mqtt:// sinks: connections opened on first use, per server.
        self._brokers = Brokers()

    async def start(self, identity: str) -> None:
        """Open the client: one keep-alive pool shared by every subscription. `identity` is
        the store's (`Store.identity`): it makes webhook-ids unique across stores."""
        if self._client is not None:
            return
        self._identity = identity
        self._client = Client(
            limit=self._max_connections,
            resolver=GuardedResolver(self._egress),
            ssl_context=self._ssl,
            max_body=MAX_RESPONSE_BODY,
        )

    async def close(self) -> None:
        await self._brokers.close()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def send(
        self, sub: Subscription, leased: Leased, now: float
    ) -> tuple[retry.Result, float]:
        """Render, add webhook-id/-timestamp/-signature, auth and the subscription's headers, POST
        once to sub.sink (or sub.delivery.dead_letter for DEAD_LETTER rows) with the per-attempt
        timeout; never follow redirects; never raise for network problems: return the classified
        Result and the latency in ms."""
        if self._client is None:
            raise RuntimeError("Sender.send called before start()")
        # The dispatcher dead-letters a DEAD_LETTER row itself when no dead_letter is set.
        url = sub.delivery.dead_letter if leased.kind is Kind.DEAD_LETTER else sub.sink
        assert url is not None
        refused = literal_refusal(url, self._egress)
        if refused is not None:
            return retry.Result(None, refused), 0.0
        if sinkurl.is_broker(url):
            started = time.perf_counter()
            result = await self._brokers.publish(url, sub, leased, self.message_id(leased))
            return result, (time.perf_counter() - started) * 1000.0
        try:
            target = sinkurl.parse(url)
        except sinkurl.InvalidSink as exc:
            # `gateway check` refuses these with the same parser: an unchecked config gets here.
            return retry.Result(None, f"invalid sink url: {exc}"), 0.0
        try:
            request = render(sub, leased)
            headers = self._headers(
                sub, self.message_id(leased), now, request, to_sink=leased.kind is Kind.SINK
            )
        except (ValueError, TypeError) as exc:
            # Permanent, but reported like any failed attempt so the row ends up dead-lettered.
            return retry.Result(None, f"could not build the request: {type(exc).__name__}"), 0.0
        started = time.perf_counter()
        dead_letter = leased.kind is Kind.DEAD_LETTER
        traced = tracing.attempt(
            sub.name, leased.event.attributes, leased.attempt, headers, dead_letter=dead_letter
        )
        with traced as span:
            seconds = sub.delivery.timeout
            result = await self._post(target, headers, request.body, seconds, now, started)
            span.outcome(result.status, result.error)
        return result, (time.perf_counter() - started) * 1000.0

    async def options(self, sub: Subscription, extra: Mapping[str, str]) -> Answer:
        """CE webhook 4, the validation handshake: one OPTIONS to the exact sink URI with the
        subscription's headers and auth plus `extra`, through the same egress guard and pool as
        deliveries; never follows redirects, never raises for network problems."""
        if self._client is None:
            raise RuntimeError("Sender.options called before start()")
        refused = literal_refusal(sub.sink, self._egress)
        if refused is not None:
            return Answer(None, {}, refused)
        try:
            target = sinkurl.parse(sub.sink)
        except sinkurl.InvalidSink as exc:
            return Answer(None, {}, f"invalid sink url: {exc}")
        headers: CIMultiDict[str] = CIMultiDict()
        headers["User-Agent"] = self._user_agent
        for name, value in sub.headers:
            headers[name] = value
        if sub.bearer:
            headers["Authorization"] = f"Bearer {sub.bearer}"
        headers.update(extra)
        try:
            response = await self._client.request(
                "OPTIONS", target, headers.items(), None, sub.delivery.timeout
            )
        except TimeoutError:
            return Answer(None, {}, "timeout")
        except (OSError, ValueError) as exc:
            return Answer(None, {}, describe(exc, sub.sink))
        return Answer(response.status, response.headers, None)

    async def send_batch(
        self, sub: Subscription, rows: Sequence[Leased], request: Request, now: float
    ) -> tuple[retry.Result, float]:
        """Batch delivery (CONTRACT 5): POST one rendered batch of `rows` to sub.sink (an
        http(s) sink: the config refuses batch mode with a broker), signed once over the whole
        body, its webhook-id the batch's; like `send` otherwise."""
        if self._client is None:
            raise RuntimeError("Sender.send_batch called before start()")
        refused = literal_refusal(sub.sink, self._egress)
        if refused is not None:
            return retry.Result(None, refused), 0.0
        try:
            target = sinkurl.parse(sub.sink)
            headers = self._headers(sub, self.batch_id(rows[0]), now, request, to_sink=True)
        except (sinkurl.InvalidSink, ValueError, TypeError) as exc:
            return retry.Result(None, f"could not build the request: {type(exc).__name__}"), 0.0
        started = time.perf_counter()
        first = rows[0]
        with tracing.attempt(sub.name, first.event.attributes, first.attempt, headers) as span:
            seconds = sub.delivery.timeout
            result = await self._post(target, headers, request.body, seconds, now, started)
            span.outcome(result.status, result.error)
        return result, (time.perf_counter() - started) * 1000.0

    def message_id(self, leased: Leased) -> str:
        """The webhook-id of a delivery row: the same on every attempt of it."""
        return f"msg_{self._identity}_{leased.id}"

    def batch_id(self, leased: Leased) -> str:
        """The webhook-id of the batch `leased` is sent in: the same on every attempt of it
        (the group's id is the smallest row id of the group, never reused within a store)."""
        return f"msg_{self._identity}_batch{leased.batch}"

    def _headers(
        self, sub: Subscription, msg_id: str, now: float, request: Request, *, to_sink: bool
    ) -> CIMultiDict[str]:
        rendered, body = request.headers, request.body
        headers: CIMultiDict[str] = CIMultiDict()
        headers["User-Agent"] = self._user_agent
        for name, value in sub.headers:
            headers[name] = value
        for name, value in rendered:
            headers[name] = value
        # Standard Webhooks: the id is unique per message and the same on every retry of it
        # (a row id is never reused within a store; the store's identity sets stores apart);
        # the timestamp is this attempt's, in integer Unix seconds.
        timestamp = int(now)
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        if sub.signing_secrets:
            # Standard Webhooks: signed over the exact body bytes sent; several signatures
            # (one per secret, space-delimited) let the subscriber rotate its secret.
            headers["webhook-signature"] = " ".join(
                signing.sign(secret, msg_id, timestamp, body) for secret in sub.signing_secrets
            )
        if sub.bearer:
            # CE webhook 3.1: OAuth 2.0 bearer token in the Authorization header.
            headers["Authorization"] = f"Bearer {sub.bearer}"
        if sub.delivery.handshake and to_sink:
            # CE webhook 2.1/4: after the handshake every delivery carries the same origin.
            headers["WebHook-Request-Origin"] = self.origin
        return headers

    async def _post(
        self,
        url: URL,
        headers: CIMultiDict[str],
        body: bytes,
        seconds: float,
        now: float,
        started: float,
    ) -> retry.Result:
        assert self._client is not None
        try:
            # CE webhook 2.2: the client MUST NOT follow redirects (the client never does).
            response = await self._client.request("POST", url, headers.items(), body, seconds)
        except TimeoutError:
            return retry.Result(None, "timeout")
        except (OSError, ValueError) as exc:
            return retry.Result(None, describe(exc, str(url)))
        waited = time.perf_counter() - started
        value = response.headers.get("retry-after")
        return retry.Result(response.status, None, retry.parse_retry_after(value, now + waited))


def describe(exc: BaseException, url: str) -> str:
    """A short description of a failed attempt, the sink URL in it redacted."""
    if isinstance(exc, EgressRefused):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls error"
    for kind, code, text in _OS_ERRORS:
        if isinstance(exc, kind) or (isinstance(exc, OSError) and exc.errno == code):
            return text
    if isinstance(exc, ServerDisconnected):
        return "server disconnected"
    if isinstance(exc, InvalidResponse):
        return "invalid response"
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, ValueError):
        # e.g. a header value with a line break: the request could not be built.
        return "invalid request"
    text = str(exc)
    for form in _spellings(url):
        text = text.replace(form, redact.url(url))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _spellings(url: str) -> list[str]:
    """The sink URL as written and as the client library normalises it, longest first."""
    forms = {url}
    with contextlib.suppress(ValueError, TypeError):
        forms.add(str(URL(url)))
    return sorted((form for form in forms if form), key=len, reverse=True)
