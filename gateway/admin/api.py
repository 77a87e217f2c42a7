"""The admin API (CONTRACT 6): JSON under `/admin/v1/`, on a listener of its own, described by
`openapi.json` beside this module. Every request carries `Authorization: Bearer <token>` when
the config sets a token (compared in constant time); errors are problem+json."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.admin import ui
from gateway.admin.control import Control, Selection, cesql, dead_letter_json
from gateway.errors import BadRequest, GatewayError, Unauthorized

CONTROL = web.AppKey("control", Control)
PREFIX = "/admin/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _problem(error: GatewayError) -> web.Response:
    return web.Response(
        body=orjson.dumps(error.problem()),
        status=error.status,
        content_type="application/problem+json",
        headers=error.headers,
    )


def guard(token: str | None) -> Middleware:
    """The one place admin errors become problem+json, after the token check."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if expected is not None and not ui.owns(request.path):  # /ui has its own login
                given = request.headers.get("Authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    raise Unauthorized("missing or wrong admin token (Authorization: Bearer ...)")
            return await handler(request)
        except GatewayError as exc:
            return _problem(exc)

    return middleware


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _count(value: Any, key: str, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{key} must be an integer") from None
    if number < (1 if key == "limit" else 0):
        raise BadRequest(f"{key} is out of range")
    return number


def _selection(control: Control, name: str, body: dict[str, Any]) -> Selection:
    ids = body.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequest("ids must be a list of event ids")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("dry_run must be true or false")
    return Selection(
        subscription=name,
        since=control.time(_text(body, "since"), "since"),
        until=control.time(_text(body, "until"), "until"),
        filter=cesql(_text(body, "filter")),
        event_ids=tuple(ids),
        dry_run=dry_run,
        after=_count(body.get("after"), "after", 0) or 0,
        limit=_count(body.get("limit"), "limit", None),
    )


async def openapi(request: web.Request) -> web.Response:
    text = resources.files("gateway.admin").joinpath("openapi.json").read_bytes()
    return web.Response(body=text, content_type="application/json")


async def status(request: web.Request) -> web.Response:
    return _json(await request.app[CONTROL].status())


async def subscriptions(request: web.Request) -> web.Response:
    return _json({"subscriptions": await request.app[CONTROL].subscriptions()})


async def pause(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await request.app[CONTROL].pause(name)
    return _json({"name": name, "state": "paused"})


async def resume(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await request.app[CONTROL].resume(name)
    return _json({"name": name, "state": "active"})


async def dead_letters(request: web.Request) -> web.Response:
    control, query = request.app[CONTROL], request.query
    found = await control.dead_letters(
        query.get("subscription") or None,
        control.time(query.get("since"), "since"),
        control.time(query.get("until"), "until"),
        _count(query.get("limit"), "limit", 1000) or 1000,
    )
    return _json({"dead_letters": [dead_letter_json(d) for d in found]})


async def redrive(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    selection = _selection(control, request.match_info["name"], await _body(request))
    return _json(await control.redrive(selection))


async def replay(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    body = await _body(request)
    if not body.get("since"):
        raise BadRequest("since is required (an RFC 3339 time or a duration such as 2h)")
    return _json(await control.replay(_selection(control, request.match_info["name"], body)))


async def event(request: web.Request) -> web.Response:
    source, ident = request.query.get("source"), request.query.get("id")
    if not source or not ident:
        raise BadRequest("give the event's source and id (?source=...&id=...)")
    return _json(await request.app[CONTROL].history(source, ident))


async def reload(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    done = await control.reload()
    body = {
        "ok": done.ok,
        "generation": done.generation,
        "problems": [p.as_json() for p in done.problems],
    }
    return _json(body, 200 if done.ok else 422)


def application(control: Control, token: str | None) -> web.Application:
    app = web.Application(middlewares=[guard(token)], client_max_size=1 << 20)
    app[CONTROL] = control
    app.router.add_get(f"{PREFIX}/openapi.json", openapi)
    app.router.add_get(f"{PREFIX}/status", status)
    app.router.add_get(f"{PREFIX}/subscriptions", subscriptions)
    app.router.add_post(f"{PREFIX}/subscriptions/{{name}}/pause", pause)
    app.router.add_post(f"{PREFIX}/subscriptions/{{name}}/resume", resume)
    app.router.add_post(f"{PREFIX}/subscriptions/{{name}}/redrive", redrive)
    app.router.add_post(f"{PREFIX}/subscriptions/{{name}}/replay", replay)
    app.router.add_get(f"{PREFIX}/deadletters", dead_letters)
    app.router.add_get(f"{PREFIX}/events", event)
    app.router.add_post(f"{PREFIX}/reload", reload)
    ui.install(app, control, token)
    return app
