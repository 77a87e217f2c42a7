"""Sink secrets never leave the process or rest in the store; identifiers in logs are clipped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from gateway.ops.logs import FieldFormatter
from tests.integration.conftest import FAST_RETRY, Start
from tests.integration.events import order, structured
from tests.integration.subscriber import Subscriber

SECRETS = ("PASSWORD", "SECRET")


def secret_sink(base: str, path: str, token: str = "SECRET") -> str:
    return base.replace("http://", "http://alice:PASSWORD@") + f"{path}?token={token}"


def column(db: Path, sql: str) -> list[object]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute(sql).fetchall()]


async def until(check: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_dead_letter_notices_and_stored_rows_show_the_sink_redacted(
    start: Start, subscriber: tuple[Subscriber, str], tmp_path: Path
) -> None:
    _, base = subscriber
    specs = [
        {"name": "strict", "sink": secret_sink(base, "/strict"),
         "delivery": {"dead_letter": f"{base}/dead", "retry": FAST_RETRY}},
        {"name": "gone", "sink": secret_sink(base, "/gone"), "delivery": {"retry": FAST_RETRY}},
    ]
    gw = await start(specs)
    gw.subscriber.plan("/strict", 400)
    gw.subscriber.plan("/gone", 410)
    await gw.post(**structured(order()))
    [dead] = await gw.subscriber.wait_for("/dead", 1)
    shown = json.loads(dead.body)["deadlettersink"]
    assert shown == base.replace("http://", "http://alice:***@") + "/strict?token=***"
    await until(lambda: _paused(gw, "gone"))
    db = tmp_path / "config" / "data" / "gateway.db"
    stored = [
        *column(db, "SELECT dl_sink FROM deliveries WHERE dl_sink IS NOT NULL"),
        *column(db, "SELECT sink FROM paused"),
        *column(db, "SELECT sink_fingerprint FROM paused"),
    ]
    # Two dead rows and one notice row, the pause and its fingerprint.
    assert len(stored) == 5, stored
    assert not [value for value in stored for secret in SECRETS if secret in str(value)]


async def _paused(gw: object, name: str) -> bool:
    return name in await gw.gateway.store.paused()  # type: ignore[attr-defined]


async def test_the_pause_ends_when_any_part_of_the_sink_changes_secrets_included(
    start: Start, subscriber: tuple[Subscriber, str], tmp_path: Path
) -> None:
    _, base = subscriber

    def spec(token: str) -> list[dict[str, object]]:
        return [{"name": "gone", "sink": secret_sink(base, "/gone", token),
                 "delivery": {"retry": FAST_RETRY}}]

    gw = await start(spec("A"))
    gw.subscriber.plan("/gone", 410, 200)
    await gw.post(**structured(order()))
    await until(lambda: _paused(gw, "gone"))
    await gw.post(**structured(order()))  # waits for the pause to end
    await gw.client.close()

    gw = await start(spec("A"))  # the same sink: still paused
    assert "gone" in gw.gateway.dispatcher.paused
    await gw.client.close()
    db = tmp_path / "config" / "data" / "gateway.db"
    # A row as gateways before redaction wrote it: the URL verbatim, no fingerprint.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE paused SET sink = ?, sink_fingerprint = NULL",
                     (secret_sink(base, "/gone", "A"),))

    gw = await start(spec("A"))  # still paused, and the row is rewritten redacted
    assert "gone" in gw.gateway.dispatcher.paused
    assert "SECRET" not in str(column(db, "SELECT sink FROM paused"))
    assert "PASSWORD" not in str(column(db, "SELECT sink FROM paused"))
    assert column(db, "SELECT sink_fingerprint FROM paused") != [None]
    await gw.client.close()

    gw = await start(spec("B"))  # only the token changed: the pause ends, the event goes out
    assert "gone" not in gw.gateway.dispatcher.paused
    await gw.subscriber.wait_for("/gone", 2)
    assert await gw.gateway.store.paused() == {}


async def test_identifiers_in_delivery_log_lines_are_clipped(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await start([{"name": "down", "sink": "{sink}/down",
                       "delivery": {"retry": {**FAST_RETRY, "max_attempts": 1}}}])
    gw.subscriber.plan("/down", 500)
    caplog.set_level(logging.INFO, logger="gateway.delivery")
    event = order("i" * 3000)
    assert (await gw.post(**structured(event))).status == 202
    await gw.subscriber.wait_for("/down", 1)
    async with asyncio.timeout(10):
        while not [r for r in caplog.records if r.getMessage().startswith("delivery dead")]:
            await asyncio.sleep(0.05)
    formatter = FieldFormatter("%(message)s")
    lines = [formatter.format(r) for r in caplog.records if r.name == "gateway.delivery"]
    assert lines
    for line in lines:
        assert "i" * 200 not in line
        assert "event_id=" + "i" * 127 + "…" in line
