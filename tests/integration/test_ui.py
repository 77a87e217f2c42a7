"""The dashboard at /ui against the real `gateway serve` and a real failing subscriber, driven in
headless Chromium (Debian's package, through playwright): log in, watch a failing subscription
turn red with a growing backlog, pause and resume it, redrive its dead letters, replay a window,
look an event up; a wrong token and a request without the CSRF token are refused.

With GATEWAY_UI_SCREENSHOTS=1 the tests write a screenshot of each page to docs/ui/."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.conftest import write_deployment
from tests.integration.process import ROOT, Process, free_port
from tests.integration.test_admin import TOKEN, Sink, sink  # noqa: F401 -- the sink fixture

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = ROOT / "docs" / "ui" if os.environ.get("GATEWAY_UI_SCREENSHOTS") else None
# Failed attempts are retried after 5 s, so a failing subscription's backlog stays visible.
SLOW = {"initial_delay": "5s", "max_delay": "5s", "max_attempts": 2, "jitter": 0}


@dataclass
class Deployment:
    process: Process
    admin: str

    async def publish(self, count: int) -> list[str]:
        from tests.integration.events import order, structured

        ids = []
        async with aiohttp.ClientSession() as http:
            for _ in range(count):
                event = order()
                async with http.post(f"{self.process.url}/events", **structured(event)) as resp:
                    assert resp.status == 202, await resp.text()
                ids.append(event.get_id())
        return ids

    async def status(self, name: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.admin}/admin/v1/status", headers=headers) as resp,
        ):
            body = await resp.json()
        found: dict[str, Any] = next(s for s in body["subscriptions"] if s["name"] == name)
        return found


@pytest.fixture
async def deployment(tmp_path: Path, sink: Sink) -> AsyncIterator[Deployment]:  # noqa: F811
    port, admin = free_port(), free_port()
    subscriptions = [
        # No breaker: the failing subscription's events must walk to their dead letters.
        {"name": n, "sink": f"{sink.url}/{n}",
         "delivery": {"timeout": "2s", "retry": SLOW, "circuit_breaker": False}}
        for n in ("billing", "warehouse")
    ]
    gateway = {
        "server": {"port": port},
        "admin": {"host": "127.0.0.1", "port": admin, "token": TOKEN},
        "dispatch": {"poll_interval": "100ms"},
    }
    config = write_deployment(tmp_path, subscriptions, gateway)
    process = Process(config, port, tmp_path / "gateway.log")
    await process.start()
    yield Deployment(process, f"http://127.0.0.1:{admin}")
    process.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    # No skip: CI installs chromium (.ci/chromium.sh); a missing browser fails these tests.
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


async def shot(page: Page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def until(check: Callable[[], Any], page: Page | None = None, timeout: float = 30) -> Any:
    """Poll (reloading the page) until `check` gives something true."""
    for _ in range(int(timeout / 0.3)):
        if page is not None:
            await page.reload()
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError("not reached")


async def login(page: Page, d: Deployment, token: str = TOKEN) -> None:
    await page.goto(f"{d.admin}/ui")
    assert page.url.endswith("/ui/login")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Log in").click()


async def test_operator_follows_a_failing_subscription(
    deployment: Deployment, browser: Browser, sink: Sink  # noqa: F811
) -> None:
    d = deployment
    sink.status["billing"] = 500
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await login(page, d)
    await page.wait_for_url(f"{d.admin}/ui")
    assert await page.get_by_role("heading", name="Subscriptions").is_visible()

    # A failing subscriber: its row turns red (failing) and its backlog grows.
    await d.publish(2)
    row = page.locator('tr[data-subscription="billing"]')

    async def failing() -> int | None:
        if await row.get_attribute("class") != "failing":
            return None
        backlog = int(await row.locator("[data-backlog]").inner_text())
        return backlog or None

    first = await until(failing, page)
    assert await row.locator(".badge").inner_text() == "active · failing"
    assert await page.locator('tr[data-subscription="warehouse"]').get_attribute("class") == "ok"
    await shot(page, "overview")
    await d.publish(3)

    async def grown() -> bool:
        return int(await row.locator("[data-backlog]").inner_text()) > first

    await until(grown, page)

    # Pause and resume it from its page.
    await row.get_by_role("link", name="billing").click()
    await page.get_by_role("button", name="Pause").click()
    await page.get_by_text("billing paused").wait_for()
    assert (await d.status("billing"))["state"] == "paused"
    assert await page.locator("#live .badge").inner_text() == "paused"
    await page.get_by_role("button", name="Resume").click()
    await page.get_by_text("billing resumed").wait_for()
    assert (await d.status("billing"))["state"] == "active"

    # Every event is dead-lettered after its second attempt.
    async def all_dead() -> bool:
        return await page.locator("[data-dead]").inner_text() == "5"

    await until(all_dead, page, timeout=60)
    await shot(page, "subscription")
    sink.status["billing"] = 204

    # One dead letter picked on the dead-letter page, the rest from the subscription's page.
    await page.get_by_role("link", name="Dead letters").click()
    await page.get_by_label("Subscription").select_option("billing")
    await page.get_by_role("button", name="Filter").click()
    boxes = page.get_by_role("checkbox")
    assert await boxes.count() == 5
    await shot(page, "deadletters")
    await boxes.first.check()
    await page.get_by_role("button", name="Redrive selected").click()
    await page.get_by_text("billing: 1 redriven.").wait_for()
    await sink.until(lambda: len(sink.ok("billing")) == 1)
    await page.goto(f"{d.admin}/ui/subscriptions/billing")
    await page.get_by_role("button", name=re.compile(r"Redrive 4 dead letters")).click()
    await page.get_by_text("4 dead letters of billing redriven.").wait_for()
    await sink.until(lambda: len(sink.ok("billing")) == 5)

    # Replay: counted first (a dry run), then run.
    await page.get_by_label("Since (time or duration, e.g. 2h)").fill("1h")
    await page.get_by_role("button", name="Count events (dry run)").click()
    assert await page.locator("[data-preview]").inner_text() == "5"
    assert len(sink.ok("billing")) == 5  # nothing sent by the count
    await page.get_by_role("button", name="Replay 5 events").click()
    await page.get_by_text("Replay: 5 events queued again for billing.").wait_for()
    await sink.until(lambda: len(sink.ok("billing")) == 10)


async def test_event_lookup_and_config(
    deployment: Deployment, browser: Browser, sink: Sink  # noqa: F811
) -> None:
    d = deployment
    sink.status["billing"] = 500
    [ident] = await d.publish(1)
    await sink.until(lambda: len(sink.ok("warehouse")) == 1 and sink.hits)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await login(page, d)
    await page.wait_for_url(f"{d.admin}/ui")
    await page.get_by_role("link", name="Event lookup").click()
    await page.get_by_label("Source").fill("/shop")
    await page.get_by_label("Id").fill(ident)
    await page.get_by_role("button", name="Look up").click()
    await page.get_by_role("heading", name="The CloudEvent").wait_for()
    assert ident in await page.locator("table.attrs").inner_text()
    deliveries = page.locator("section.delivery")
    assert await deliveries.count() == 2
    billing = deliveries.filter(has=page.get_by_role("heading", name=re.compile("^billing")))
    assert "500" in await billing.locator("table.attempts").inner_text()
    warehouse = deliveries.filter(has=page.get_by_role("heading", name=re.compile("^warehouse")))
    assert "delivered" in await warehouse.locator("h3").inner_text()
    await shot(page, "event")

    await page.get_by_label("Id").fill("no-such-event")
    await page.get_by_role("button", name="Look up").click()
    assert "no stored event" in await page.get_by_role("alert").inner_text()

    await page.get_by_role("link", name="Config").click()
    assert await page.locator("[data-generation]").inner_text() == "1"
    await page.get_by_role("button", name="Reload the config from disk").click()
    await page.get_by_text("Config reloaded: generation 2.").wait_for()
    await shot(page, "config")


async def test_wrong_token_refused(deployment: Deployment, browser: Browser) -> None:
    page = await browser.new_page()
    await login(page, deployment, token="not-the-token")
    assert await page.get_by_role("alert").inner_text() == "That is not the admin token."
    assert page.url.endswith("/ui/login")
    assert await page.context.cookies() == []
    await page.goto(f"{deployment.admin}/ui/deadletters")
    assert page.url.endswith("/ui/login")
    await shot(page, "login")


async def test_session_cookie_and_csrf(deployment: Deployment) -> None:
    d = deployment
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        form = {"token": TOKEN}
        async with http.post(f"{d.admin}/ui/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 303
            cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/ui" in cookie
        assert TOKEN not in cookie
        async with http.get(f"{d.admin}/ui/subscriptions/billing") as resp:
            assert resp.status == 200
            page = await resp.text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        pause = f"{d.admin}/ui/subscriptions/billing/pause"
        for refused in ({}, {"csrf": "forged"}):
            async with http.post(pause, data=refused, allow_redirects=False) as resp:
                assert resp.status == 403
            assert (await d.status("billing"))["state"] == "active"
        async with http.post(pause, headers={"X-CSRF-Token": "forged"}) as resp:
            assert resp.status == 403
        async with http.post(pause, data={"csrf": csrf[1]}, allow_redirects=False) as resp:
            assert resp.status == 303
        assert (await d.status("billing"))["state"] == "paused"
        # The session cookie is not a key to the admin API, and logging out ends the session.
        async with http.get(f"{d.admin}/admin/v1/status") as resp:
            assert resp.status == 401
        async with http.post(f"{d.admin}/ui/logout", data={"csrf": csrf[1]}) as resp:
            assert resp.url.path == "/ui/login"
    async with aiohttp.ClientSession() as http:  # no session: the login form
        resume = f"{d.admin}/ui/subscriptions/billing/resume"
        async with http.post(resume, data={"csrf": csrf[1]}, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/ui/login"
    assert (await d.status("billing"))["state"] == "paused"
