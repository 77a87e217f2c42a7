"""Wiring of the dashboard into the admin application: its state, templates, login and CSRF
checks around every handler, static files, and the history task's start and stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import jinja2
from aiohttp import web

from gateway.admin.control import Control
from gateway.admin.times import rfc3339
from gateway.admin.ui.history import History
from gateway.admin.ui.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, Session, Sessions
from gateway.admin.ui.svg import chart, sparkline

PREFIX = "/ui"

Page = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
Action = Callable[[web.Request, Session, dict[str, list[str]]], Awaitable[web.StreamResponse]]


def owns(path: str) -> bool:
    """Whether a request path is the dashboard's (it checks its own login, not the Bearer)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


@dataclass
class Dashboard:
    control: Control
    sessions: Sessions
    history: History
    templates: jinja2.Environment

    def now(self) -> float:
        return self.control.gw.clock()

    def session(self, request: web.Request) -> Session | None:
        return self.sessions.find(request.cookies.get(COOKIE), self.now())


DASHBOARD = web.AppKey("dashboard", Dashboard)


def ago(seconds: float | None) -> str:
    if not seconds:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.admin.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, rate=_rate, time=rfc3339)
    env.globals.update(sparkline=sparkline, chart=chart, prefix=PREFIX)
    return env


def render(
    request: web.Request, session: Session, name: str, status: int = 200, partial: bool = False,
    **context: Any,
) -> web.Response:
    ui = request.app[DASHBOARD]
    text = ui.templates.get_template(name).render(
        session=session,
        open=ui.sessions.open,
        flash=[] if partial else session.take_flash(),
        active=context.pop("active", ""),
        **context,
    )
    return web.Response(text=text, status=status, content_type="text/html", headers=HEADERS)


# The pages load nothing from elsewhere and are never framed.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def set_cookie(response: web.StreamResponse, session: Session, ttl: float) -> None:
    response.set_cookie(
        COOKIE, session.id, path=PREFIX, httponly=True, samesite="Strict", max_age=int(ttl)
    )


def _to_login(request: web.Request) -> web.StreamResponse:
    if request.headers.get("HX-Request"):  # htmx: the whole page goes to the login form
        return web.Response(status=401, headers={"HX-Redirect": f"{PREFIX}/login"})
    raise web.HTTPSeeOther(f"{PREFIX}/login")


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page: the session's, or the login form (without a token, a session is made)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        ui = request.app[DASHBOARD]
        session = ui.session(request)
        if session is not None:
            return await handler(request, session)
        if not ui.sessions.open:
            return _to_login(request)
        session = ui.sessions.create(ui.now())
        response = await handler(request, session)
        set_cookie(response, session, ui.sessions.ttl)
        return response

    return wrapped


def action(handler: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A state-changing request: a session and its CSRF token, or 403."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        ui = request.app[DASHBOARD]
        session = ui.session(request)
        if session is None:
            if ui.sessions.open:
                raise web.HTTPForbidden(text="no dashboard session: open /ui first")
            return _to_login(request)
        posted = await request.post()
        form: dict[str, list[str]] = {}
        for key, value in posted.items():
            if isinstance(value, str):
                form.setdefault(key, []).append(value)
        fields = form.get(CSRF_FIELD)
        given = fields[0] if fields else request.headers.get(CSRF_HEADER)
        if not session.csrf_ok(given):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")
        return await handler(request, session, form)

    return wrapped


def back(session: Session, to: str, *messages: str) -> NoReturn:
    """After an action: say what happened on the next page (post/redirect/get)."""
    session.flash.extend(messages)
    raise web.HTTPSeeOther(to)


def install(app: web.Application, control: Control, token: str | None) -> None:
    from gateway.admin.ui import actions, pages

    ui = Dashboard(control, Sessions(token), History(control), environment())
    app[DASHBOARD] = ui
    pages.add_routes(app.router)
    actions.add_routes(app.router)
    static = Path(str(resources.files("gateway.admin.ui").joinpath("static")))
    app.router.add_static(f"{PREFIX}/static", static, append_version=False)

    async def history(app: web.Application) -> AsyncIterator[None]:
        ui.history.start()
        yield
        await ui.history.stop()

    app.cleanup_ctx.append(history)
