"""The dashboard's parts apart from a browser: plots as SVG, rates and series from the history
ring buffer, sessions, and the dashboard without an admin token (no login, CSRF still checked)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.admin.ui.history import History, Point, Sample
from gateway.admin.ui.sessions import Sessions
from gateway.admin.ui.svg import chart, sparkline
from gateway.app import assemble, build, build_admin, operate
from gateway.cli import load_all
from gateway.config.model import Admin
from tests.integration.conftest import write_deployment


def point(delivered: int, failed: int, backlog: int = 0) -> Point:
    return Point(delivered, failed, backlog, 0.0, attempt_seconds=delivered * 0.01,
                 attempts=float(delivered))  # fmt: skip


def history(*samples: Sample) -> History:
    found = History(control=None, interval=10.0, keep=3)  # type: ignore[arg-type]
    found.samples.extend(samples)
    return found


def test_ring_buffer_is_bounded() -> None:
    h = history(*(Sample(float(i), {}) for i in range(5)))
    assert [s.at for s in h.samples] == [2.0, 3.0, 4.0]


def test_rates_per_minute_over_the_last_minute() -> None:
    h = history(Sample(0.0, {"a": point(0, 0)}), Sample(30.0, {"a": point(10, 2)}))
    now = Sample(60.0, {"a": point(40, 8), "new": point(1, 0)})
    rates = h.rates(now, "a")
    assert rates.delivered_per_min == pytest.approx(40.0)
    assert rates.failed_per_min == pytest.approx(8.0)
    unknown = h.rates(now, "new")
    assert (unknown.delivered_per_min, unknown.failed_per_min) == (None, None)


def test_series_has_gaps_where_a_subscription_was_absent() -> None:
    h = history(
        Sample(0.0, {"a": point(0, 0, 3)}), Sample(10.0, {}), Sample(20.0, {"a": point(5, 1)})
    )
    series = h.series("a", Sample(30.0, {"a": point(10, 1, 7)}))
    assert series["backlog"] == [3.0, None, 0.0, 7.0]
    assert series["delivered"] == [None, None, None, pytest.approx(30.0)]
    assert series["latency"][-1] == pytest.approx(10.0)
    assert len(h.series("a", every=2)["at"]) == 2


def test_sparkline_draws_runs_and_says_what_it_shows() -> None:
    svg = str(sparkline([1.0, 2.0, None, 4.0], 'failed <per> "minute"'))
    assert svg.count("M") == 2  # two runs: the gap is not bridged
    assert "h0.5" in svg  # a lone point is drawn as a dot
    assert 'aria-label="failed &lt;per&gt; &#34;minute&#34;: last 4, peak 4"' in svg
    assert "no data yet" in str(sparkline([None, None], "backlog"))
    assert ">12.5<" in str(chart([0.0, 12.5], "latency", "ms"))


def test_sessions_hold_a_random_id_and_a_csrf_token() -> None:
    sessions = Sessions("s3cret", ttl=60.0)
    assert not sessions.open
    assert sessions.token_ok("s3cret")
    assert not sessions.token_ok("s3cre")
    one = sessions.create(now=0.0)
    assert "s3cret" not in (one.id, one.csrf)
    assert sessions.find(one.id, 30.0) is one
    assert one.csrf_ok(one.csrf)
    assert not one.csrf_ok(None)
    assert not one.csrf_ok(one.csrf[:-1])
    assert sessions.find(one.id, 61.0) is None  # expired
    two = sessions.create(now=0.0)
    sessions.end(two.id)
    assert sessions.find(two.id, 1.0) is None


@pytest.fixture
async def open_dashboard(
    tmp_path: Path, aiohttp_client: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    """The admin application without a token (a loopback-only admin listener)."""
    path = write_deployment(tmp_path, [{"name": "billing", "sink": "http://127.0.0.1:9/b"}])
    config, registry, problems = load_all(path)
    assert config is not None, problems
    assert registry is not None
    gw = assemble(config, registry)
    control = operate(gw, build(gw), load_all)
    await gw.store.open()
    gw.ready = True
    yield await aiohttp_client(build_admin(control, Admin(token=None)))
    await gw.store.close()


async def test_without_a_token_there_is_no_login_but_csrf_still_holds(
    open_dashboard: TestClient[Any, Any],
) -> None:
    client = open_dashboard
    resp = await client.get("/ui/login", allow_redirects=False)
    assert resp.status == 303
    resp = await client.get("/ui")
    assert resp.status == 200
    page = await resp.text()
    assert "No admin token is set" in page
    assert 'data-subscription="billing"' in page
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
    assert csrf is not None
    pause = "/ui/subscriptions/billing/pause"
    resp = await client.post(pause, data={}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post(pause, headers={"X-CSRF-Token": csrf[1]}, allow_redirects=False)
    assert resp.status == 303
    resp = await client.get("/admin/v1/status")
    assert (await resp.json())["subscriptions"][0]["state"] == "paused"
    resp = await client.get("/ui/static/htmx.min.js")
    assert resp.status == 200
