"""The dashboard's state-changing requests (POST, each checked for its CSRF token): log in and
out, pause and resume, redrive dead letters, replay a window (counted first, then run), reload.
Each answers with a redirect to the page it came from, which shows what happened."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import orjson
from aiohttp import web

from gateway.admin.control import Selection, cesql
from gateway.admin.ui.sessions import COOKIE, Session
from gateway.admin.ui.site import DASHBOARD, PREFIX, action, back, set_cookie
from gateway.errors import BadRequest, GatewayError

Form = dict[str, list[str]]


def _one(form: Form, key: str) -> str:
    return (form.get(key) or [""])[0].strip()


def _page(name: str) -> str:
    return f"{PREFIX}/subscriptions/{quote(name, safe='')}"


async def login(request: web.Request) -> web.StreamResponse:
    ui = request.app[DASHBOARD]
    posted = await request.post()
    token = posted.get("token")
    if not isinstance(token, str) or not ui.sessions.token_ok(token):
        text = ui.templates.get_template("login.html").render(
            error="That is not the admin token.", open=False
        )
        return web.Response(text=text, status=401, content_type="text/html")
    session = ui.sessions.create(ui.now())
    done = web.HTTPSeeOther(PREFIX)
    set_cookie(done, session, ui.sessions.ttl)
    raise done


@action
async def logout(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    request.app[DASHBOARD].sessions.end(session.id)
    done = web.HTTPSeeOther(f"{PREFIX}/login")
    done.del_cookie(COOKIE, path=PREFIX)
    raise done


@action
async def pause(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        await request.app[DASHBOARD].control.pause(name)
    except GatewayError as exc:
        return back(session, _page(name), f"Not paused: {exc.detail}")
    return back(session, _page(name), f"{name} paused: no attempts until it is resumed.")


@action
async def resume(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        await request.app[DASHBOARD].control.resume(name)
    except GatewayError as exc:
        return back(session, _page(name), f"Not resumed: {exc.detail}")
    return back(session, _page(name), f"{name} resumed.")


@action
async def redrive(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Every dead letter of one subscription back into delivery."""
    name = request.match_info["name"]
    try:
        done = await request.app[DASHBOARD].control.redrive(Selection(name))
    except GatewayError as exc:
        return back(session, _page(name), f"Not redriven: {exc.detail}")
    return back(session, _page(name), f"{done['queued']} dead letters of {name} redriven.")


@action
async def replay(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """`run` absent: count only (a dry run) and show the count with a button that runs it."""
    name = request.match_info["name"]
    control = request.app[DASHBOARD].control
    since, until, text = _one(form, "since"), _one(form, "until"), _one(form, "filter")
    window = {"since": since, "until": until, "filter": text}
    run = _one(form, "run") == "yes"
    try:
        if not since:
            raise BadRequest("give the start of the window (since): a time or a duration")
        done = await control.replay(Selection(
            name, control.time(since, "since"), control.time(until or None, "until"), cesql(text),
            dry_run=not run,
        ))  # fmt: skip
    except GatewayError as exc:
        return back(session, f"{_page(name)}?{urlencode(window)}", f"Replay: {exc.detail}")
    if not run:
        preview = {**window, "preview": str(done["matched"])}
        raise web.HTTPSeeOther(f"{_page(name)}?{urlencode(preview)}#replay")
    return back(session, _page(name), f"Replay: {done['queued']} events queued again for {name}.")


@action
async def redrive_selected(
    request: web.Request, session: Session, form: Form
) -> web.StreamResponse:
    """Dead letters picked on the dead-letter page: `pick` values are [subscription, event id]."""
    control = request.app[DASHBOARD].control
    chosen: dict[str, list[str]] = {}
    for value in form.get("pick", []):
        try:
            sub, ident = orjson.loads(value)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            raise web.HTTPBadRequest(text="pick: not a dead letter of this page") from None
        chosen.setdefault(str(sub), []).append(str(ident))
    here = _one(form, "back") or f"{PREFIX}/deadletters"
    if not here.startswith(f"{PREFIX}/deadletters"):
        here = f"{PREFIX}/deadletters"
    if not chosen:
        return back(session, here, "Nothing selected.")
    said = []
    for sub, ids in sorted(chosen.items()):
        try:
            done = await control.redrive(Selection(sub, event_ids=tuple(ids)))
            said.append(f"{sub}: {done['queued']} redriven")
        except GatewayError as exc:
            said.append(f"{sub}: not redriven ({exc.detail})")
    return back(session, here, "; ".join(said) + ".")


@action
async def reload(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    done = await request.app[DASHBOARD].control.reload()
    if done.ok:
        return back(session, f"{PREFIX}/config", f"Config reloaded: generation {done.generation}.")
    return back(session, f"{PREFIX}/config", "Reload refused: the running config is unchanged.")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(f"{PREFIX}/login", login)
    router.add_post(f"{PREFIX}/logout", logout)
    router.add_post(f"{PREFIX}/subscriptions/{{name}}/pause", pause)
    router.add_post(f"{PREFIX}/subscriptions/{{name}}/resume", resume)
    router.add_post(f"{PREFIX}/subscriptions/{{name}}/redrive", redrive)
    router.add_post(f"{PREFIX}/subscriptions/{{name}}/replay", replay)
    router.add_post(f"{PREFIX}/deadletters/redrive", redrive_selected)
    router.add_post(f"{PREFIX}/reload", reload)
