"""The one place where exceptions become HTTP responses: RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.errors import GatewayError
from gateway.redact import clip

log = logging.getLogger("gateway.ingest")

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Who sent a request, as far as ingest knows it (a producer's or a source's name): for logs.
SENDER: web.RequestKey[str] = web.RequestKey("sender", str)
LOGGED_DETAIL = 200  # characters of a refusal's detail that reach the log


def _log_refusal(request: web.Request, error: GatewayError) -> None:
    """One INFO line per refused request (5xx are logged by the handlers, as warnings). The
    detail names what was wrong, never a credential: errors carry no secrets (errors.py)."""
    if error.status >= 500:
        return
    log.info(
        "refused %s %s: %d %s (sender=%s)",
        request.method,
        clip(request.path),
        error.status,
        clip(error.detail, LOGGED_DETAIL),
        request.get(SENDER, "-"),
    )


def problem_response(error: GatewayError) -> web.Response:
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.problem()),
        content_type=PROBLEM_JSON,
        headers=error.headers,
    )


def _http_problem(exc: web.HTTPException) -> web.Response:
    body = {"type": "about:blank", "title": exc.reason, "status": exc.status, "detail": exc.text}
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return web.Response(
        status=exc.status, body=orjson.dumps(body), content_type=PROBLEM_JSON, headers=headers
    )


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        _log_refusal(request, error)
        return problem_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_problem(exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.Response(
            status=500,
            body=orjson.dumps(
                {"type": "about:blank", "title": "Internal error", "status": 500,
                 "detail": "the gateway failed to handle this request; it was logged"}
            ),
            content_type=PROBLEM_JSON,
        )
