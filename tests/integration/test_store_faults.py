"""The gateway app while its store refuses or blocks writes: ingest answers 503 with
Retry-After, `/readyz` turns 503, and both come back when the store does.

The PostgreSQL cases run when `GATEWAY_TEST_POSTGRES` names a database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from gateway.store.postgres import parse_url
from gateway.store.sqlite import SqliteStore
from tests.integration.conftest import Start
from tests.integration.events import order, structured
from tests.unit.test_store_contract import postgres_schema

SUBSCRIPTIONS: list[dict[str, Any]] = [{"name": "all", "sink": "{sink}/all"}]


async def test_readyz_is_503_while_sqlite_writes_fail(start: Start) -> None:
    running = await start(SUBSCRIPTIONS)
    store = running.gateway.store
    assert isinstance(store, SqliteStore)
    assert (await running.client.get("/readyz")).status == 200
    conn = store._conn  # a full disk, as SQLite sees one: no page may be added
    assert conn is not None
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()
    big = order(amount=1)
    big.get_data()["padding"] = "x" * 20_000
    refused = await running.post(**structured(big))
    assert refused.status == 503
    assert refused.headers["Retry-After"]
    ready = await running.client.get("/readyz")
    assert ready.status == 503
    assert "full" in (await ready.json())["reason"]

    conn.execute("PRAGMA max_page_count = 1073741823").fetchone()  # space was freed
    assert (await running.post(**structured(big))).status == 202
    assert (await running.client.get("/readyz")).status == 200


async def test_a_locked_postgres_table_answers_503_and_readyz_503(start: Start) -> None:
    async with postgres_schema(pool_max=4, timeout=1) as url:
        running = await start(SUBSCRIPTIONS, gateway={"store": url})
        assert (await running.post(**structured(order()))).status == 202
        assert (await running.client.get("/readyz")).status == 200
        admin = await asyncpg.connect(parse_url(url)[0])
        try:
            lock = admin.transaction()
            await lock.start()
            await admin.execute("LOCK TABLE events")
            answers = await asyncio.gather(
                *(running.post(**structured(order())) for _ in range(5)),
                running.client.get("/readyz"),
            )
            *posts, ready = answers
            assert [post.status for post in posts] == [503] * 5
            assert all(post.headers.get("Retry-After") for post in posts)
            assert ready.status == 503
            await lock.rollback()
            assert (await running.post(**structured(order()))).status == 202
            for _ in range(50):  # the failed commit keeps readiness off a short while
                if (await running.client.get("/readyz")).status == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("/readyz did not come back after the lock ended")
        finally:
            await admin.close()
        await running.client.close()
