"""The one place where exceptions become HTTP responses: RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.errors import GatewayError

log = logging.getLogger("gateway.ingest")

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
