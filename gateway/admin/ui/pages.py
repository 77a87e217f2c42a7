"""The dashboard's pages (GET): overview, one subscription, event lookup, dead letters, config,
and the login form. Each reads through `Control`; none changes anything."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.admin.control import Control, dead_letter_json
from gateway.admin.ui.history import Rates, sample_of
from gateway.admin.ui.sessions import Session
from gateway.admin.ui.site import DASHBOARD, PREFIX, ago, page, render
from gateway.errors import GatewayError

RECENT = 20  # attempts shown on a subscription's page
DEAD_LETTERS = 200  # rows shown on the dead-letter page
SPARK_EVERY = 6  # a sparkline shows one point a minute


def health(row: dict[str, Any], rates: Rates) -> str:
    """How a row is shown: failing (red), paused, removed, or ok; always spelled out too."""
    if row["state"] in ("paused", "removed"):
        return str(row["state"])
    if row["state"] == "breaker-open" or (rates.failed_per_min or 0) > 0:
        return "failing"
    if rates.failed_per_min is None and row["backlog"] and row["last_error"]:
        return "failing"
    return "ok"


async def _overview_rows(request: web.Request) -> list[dict[str, Any]]:
    ui = request.app[DASHBOARD]
    rows = await ui.control.subscriptions()
    now = sample_of(ui.control, ui.now(), rows)
    out = []
    for row in rows:
        rates = ui.history.rates(now, row["name"])
        series = ui.history.series(row["name"], now, every=SPARK_EVERY)
        out.append({**row, "rates": rates, "health": health(row, rates), "series": series})
    return out


@page
async def overview(request: web.Request, session: Session) -> web.StreamResponse:
    rows = await _overview_rows(request)
    config = request.app[DASHBOARD].control.config_json()
    return render(request, session, "overview.html", rows=rows, config=config, active="overview")


@page
async def overview_rows(request: web.Request, session: Session) -> web.StreamResponse:
    rows = await _overview_rows(request)
    return render(request, session, "_overview_rows.html", partial=True, rows=rows)


async def _subscription(control: Control, request: web.Request, name: str) -> dict[str, Any]:
    ui = request.app[DASHBOARD]
    rows = await control.subscriptions()
    row = next((r for r in rows if r["name"] == name), None)
    if row is None:
        raise web.HTTPNotFound(text=f"no subscription named {name!r}")
    now = sample_of(control, ui.now(), rows)
    rates = ui.history.rates(now, name)
    series = ui.history.series(name, now)
    return {
        "row": {**row, "rates": rates, "health": health(row, rates)},
        "span": ago(now.at - (series["at"][0] or now.at)),
        "series": series,
        "sub": control.describe(name),
        "attempts": await control.recent_attempts(name, RECENT),
    }


@page
async def subscription(request: web.Request, session: Session) -> web.StreamResponse:
    control = request.app[DASHBOARD].control
    found = await _subscription(control, request, request.match_info["name"])
    preview = request.query.get("preview")
    return render(
        request, session, "subscription.html", active="overview", preview=preview,
        since=request.query.get("since", ""), until=request.query.get("until", ""),
        filter=request.query.get("filter", ""), **found,
    )  # fmt: skip


@page
async def subscription_live(request: web.Request, session: Session) -> web.StreamResponse:
    control = request.app[DASHBOARD].control
    found = await _subscription(control, request, request.match_info["name"])
    return render(request, session, "_subscription_live.html", partial=True, **found)


@page
async def event(request: web.Request, session: Session) -> web.StreamResponse:
    control = request.app[DASHBOARD].control
    source, ident = request.query.get("source", ""), request.query.get("id", "")
    found, error = None, None
    if source and ident:
        try:
            found = await control.lookup(source, ident)
        except GatewayError as exc:
            error = exc.detail
    return render(
        request, session, "event.html", status=404 if error else 200, active="event",
        source=source, id=ident, found=found, error=error,
    )  # fmt: skip


@page
async def dead_letters(request: web.Request, session: Session) -> web.StreamResponse:
    control, query = request.app[DASHBOARD].control, request.query
    chosen = query.get("subscription") or None
    since, until = query.get("since", ""), query.get("until", "")
    rows, error = [], None
    try:
        found = await control.dead_letters(
            chosen, control.time(since or None, "since"), control.time(until or None, "until"),
            DEAD_LETTERS,
        )  # fmt: skip
        rows = [dead_letter_json(d) for d in found]
    except GatewayError as exc:
        error = exc.detail
    names = sorted(control.gw.dispatcher.subscriptions)
    return render(
        request, session, "deadletters.html", status=400 if error else 200,
        active="deadletters", rows=rows, error=error, names=names, chosen=chosen or "",
        since=since, until=until, limit=DEAD_LETTERS,
    )  # fmt: skip


@page
async def config(request: web.Request, session: Session) -> web.StreamResponse:
    control = request.app[DASHBOARD].control
    return render(
        request, session, "config.html", active="config", config=control.config_json(),
        names=sorted(control.gw.dispatcher.subscriptions),
    )  # fmt: skip


async def login_form(request: web.Request) -> web.StreamResponse:
    ui = request.app[DASHBOARD]
    if ui.sessions.open or ui.session(request) is not None:
        raise web.HTTPSeeOther(PREFIX)
    text = ui.templates.get_template("login.html").render(error=None, open=False)
    return web.Response(text=text, content_type="text/html")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PREFIX, overview)
    router.add_get(f"{PREFIX}/", overview)
    router.add_get(f"{PREFIX}/login", login_form)
    router.add_get(f"{PREFIX}/live/overview", overview_rows)
    router.add_get(f"{PREFIX}/subscriptions/{{name}}", subscription)
    router.add_get(f"{PREFIX}/live/subscriptions/{{name}}", subscription_live)
    router.add_get(f"{PREFIX}/events", event)
    router.add_get(f"{PREFIX}/deadletters", dead_letters)
    router.add_get(f"{PREFIX}/config", config)
