"""Render times of the dashboard's pages with 100 subscriptions and 100,000 stored events
(issue: no page over 300 ms), on the SQLite store, through a real aiohttp server and client.

The store is filled directly: every event routed to one subscription; some leased and attempted
(delivered, failed and retried, dead-lettered) so the attempts log, counts and dead letters have
rows. The history ring buffer is filled with an hour of samples. Then each page is fetched
`--rounds` times and the median and worst times are printed.

    python -m bench.ui [--events 100000] [--subscriptions 100] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from gateway.admin.ui.history import Sample
from gateway.admin.ui.site import DASHBOARD
from gateway.app import assemble, build, build_admin, operate
from gateway.cli import load_all
from gateway.event import DataKind, Event
from gateway.store.base import Ack, Attempt, Dead, DeadLetterInfo, Kind, NewEvent, Retry

BATCH = 2000


def write_config(root: Path, subscriptions: int) -> Path:
    (root / "config" / "subscriptions").mkdir(parents=True)
    (root / "schemas").mkdir()
    main = {
        "store": "sqlite:///data/gateway.db",
        "schemas": "../schemas",
        "subscriptions": "subscriptions/",
        "admin": {"host": "127.0.0.1", "port": 0},
    }
    (root / "config" / "gateway.yaml").write_text(yaml.safe_dump(main))
    subs = [{"name": f"sub-{i:03d}", "sink": f"http://127.0.0.1:9/{i}", "types": [f"t.{i}"]}
            for i in range(subscriptions)]  # fmt: skip
    (root / "config" / "subscriptions" / "all.yaml").write_text(
        yaml.safe_dump({"subscriptions": subs})
    )
    return root / "config" / "gateway.yaml"


def event(i: int, subscriptions: int) -> Event:
    attributes: dict[str, object] = {
        "specversion": "1.0", "id": f"e-{i}", "source": "/bench", "type": f"t.{i % subscriptions}",
        "datacontenttype": "application/json",
    }  # fmt: skip
    return Event(attributes, b'{"n": %d}' % i, DataKind.JSON)  # type: ignore[arg-type]


async def fill(app: web.Application, events: int, subscriptions: int) -> None:
    ui = app[DASHBOARD]
    gw = ui.control.gw
    store, now = gw.store, time.time() - 3600
    for start in range(0, events, BATCH):
        batch = [
            NewEvent(event(i, subscriptions), (f"sub-{i % subscriptions:03d}",))
            for i in range(start, min(start + BATCH, events))
        ]
        await store.append(batch, now + start * 3600 / events, 0.0)
    # About a third of each subscription's rows attempted: delivered, retried, dead.
    for s in range(subscriptions):
        name = f"sub-{s:03d}"
        leased = await store.lease(name, Kind.SINK, events // subscriptions // 3, time.time(), 30)
        outcomes = []
        for j, row in enumerate(leased):
            if j % 3 == 0:
                outcomes.append(Ack(row, Attempt(204, 12.0)))
            elif j % 3 == 1:
                outcomes.append(Retry(row, Attempt(500, 30.0), time.time() + 3600))
            else:
                info = DeadLetterInfo("exhausted", 500, 1, "http://127.0.0.1:9/")
                outcomes.append(Dead(row, Attempt(500, 25.0), info))
        await store.finish(outcomes, time.time())
    # An hour of samples in the ring buffer.
    last = await ui.history.sample()
    ui.history.samples.clear()
    for k in range(ui.history.samples.maxlen or 360):
        ui.history.samples.append(Sample(last.at - 3600 + k * 10, last.points))


async def main(events: int, subscriptions: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = write_config(root, subscriptions)
        config, registry, problems = load_all(path)
        assert config is not None, problems
        assert registry is not None
        gw = assemble(config, registry)
        gateway = build(gw)
        control = operate(gw, gateway, load_all)
        admin = build_admin(control, config.admin)  # type: ignore[arg-type]
        # The store without the dispatcher: nothing is delivered while the pages are timed.
        admin_runner = web.AppRunner(admin)
        await admin_runner.setup()
        await gw.store.open()
        gw.ready = True
        site = web.TCPSite(admin_runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}/ui"
        started = time.perf_counter()
        await fill(admin, events, subscriptions)
        print(f"filled {events} events, {subscriptions} subscriptions "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        dead = await control.dead_letters(None, None, None, 1)
        for what, read in (
            ("store.counts (every page's status)", gw.store.counts),
            ("store.recent_attempts (20)", lambda: gw.store.recent_attempts("sub-042", 20)),
            ("dead letters, first 200", lambda: control.dead_letters(None, None, None, 200)),
        ):
            t0 = time.perf_counter()
            for _ in range(5):
                await read()
            print(f"{what:34} {(time.perf_counter() - t0) * 200:10.1f} ms (mean of 5)")
        pages = {
            "overview": "",
            "overview (live rows)": "/live/overview",
            "subscription": "/subscriptions/sub-042",
            "event": f"/events?source=/bench&id={dead[0].event.id}",
            "dead letters (all, first 200)": "/deadletters",
            "dead letters (one subscription)": "/deadletters?subscription=sub-042",
            "config": "/config",
        }
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as resp:  # a session (no token: no login)
                assert resp.status == 200
            print(f"{'page':34} {'median ms':>10} {'max ms':>8}")
            for name, path in pages.items():
                times = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    async with http.get(base + path) as resp:
                        await resp.read()
                        assert resp.status == 200, (name, resp.status)
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"{name:34} {statistics.median(times):10.1f} {max(times):8.1f}")
        await admin_runner.cleanup()
        await gw.store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.subscriptions, args.rounds))
