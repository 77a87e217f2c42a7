"""What an operator can do to a running gateway (CONTRACT 6), apart from HTTP: status, dead
letters, redrive, replay, pause and resume, one event's history, and reload.

Reload validates the whole new config first; a refused one changes nothing and is kept as the
config's `last_error`. An accepted one is swapped in for ingest (config, schemas, router) and for
the dispatcher (subscriptions) between two requests: connections and accepted events stay.
Settings read once at start (`server`, `store`, `admin`, `dispatch`, `egress`) keep their
running values until the next start, which the log says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway import redact
from gateway.admin.times import parse_time, rfc3339
from gateway.config.model import Config, Subscription, ordering_attributes
from gateway.diagnostics import Problem
from gateway.errors import BadRequest, NotFound, StoreUnavailable
from gateway.event import DataKind, Event
from gateway.ingest.context import Ingest
from gateway.routing.filters import Filter, FilterError, compile_filter, explain, match
from gateway.routing.router import Router
from gateway.runtime import Gateway
from gateway.schemas import SchemaRegistry
from gateway.store.base import DeadLetter, Kind, State
from gateway.store.ops import DeadLetterQuery, EventHistory, ReplicaState

log = logging.getLogger("gateway.admin")

Loader = Callable[[Path], tuple[Config | None, SchemaRegistry | None, list[Problem]]]

CHUNK = 500  # rows per store call of a redrive or replay
RESTART_ONLY = ("server", "store_url", "admin", "dispatch", "egress")
# Each replica reports its config generation this often; one silent for REPLICA_GONE is not
# listed (a stopped replica, or one that can no longer reach the store).
REPORT_EVERY = 10.0
REPLICA_GONE = 3 * REPORT_EVERY
STATES = {int(State.PENDING): "pending", int(State.DELIVERED): "delivered", int(State.DEAD): "dead"}


@dataclass(frozen=True, slots=True)
class Selection:
    """A redrive or replay as asked: the window, a CESQL filter, event ids, one page or all."""

    subscription: str
    since: float | None = None
    until: float | None = None
    filter: Filter | None = None
    event_ids: tuple[str, ...] = ()
    dry_run: bool = False
    after: int = 0
    limit: int | None = None  # one page of this many rows (with `next`); None: everything

    def takes(self, event: Event) -> bool:
        return self.filter is None or self.filter.match(event)


@dataclass(frozen=True, slots=True)
class Reloaded:
    ok: bool
    generation: int
    problems: tuple[Problem, ...]


def cesql(expression: str | None) -> Filter | None:
    if not expression:
        return None
    try:
        return compile_filter({"sql": expression}, "filter")
    except FilterError as exc:
        raise BadRequest(f"filter: {exc}") from None


class Control:
    def __init__(self, gw: Gateway, ingest: Ingest, load: Loader) -> None:
        self.gw, self._ingest, self._load = gw, ingest, load
        self.generation = 1
        self.loaded_at = gw.clock()
        self.problems: tuple[Problem, ...] = ()  # of the last refused reload
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[Reloaded] | None = None

    # -- config ---------------------------------------------------------------------------

    def config_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "loaded_at": rfc3339(self.loaded_at),
            "last_error": self._last_error(),
            "problems": [p.as_json() for p in self.problems],
            "replica": self.gw.store.identity,
        }

    def _last_error(self) -> str | None:
        errors = [p for p in self.problems if p.is_error]
        return f"reload refused: {errors[0]}" if errors else None

    async def report(self) -> None:
        """Tell the store (so every replica's `status`) which config this replica runs."""
        state = ReplicaState(
            self.gw.store.replica, self.generation, self.loaded_at, self._last_error(),
            self.gw.clock(),
        )  # fmt: skip
        await self.gw.store.report_replica(state)

    async def _report_now(self) -> None:
        try:
            await self.report()
        except StoreUnavailable as exc:  # the heartbeat says it again shortly
            log.debug("replica state not reported: %s", exc.detail)

    async def keep_reporting(self) -> None:
        """The replica's heartbeat: owned by the app (`app.operate`), cancelled at stop."""
        while True:
            await self._report_now()
            await asyncio.sleep(REPORT_EVERY)

    async def replicas_json(self) -> list[dict[str, Any]]:
        now = self.gw.clock()
        return [
            {
                "replica": r.replica,
                "generation": r.generation,
                "loaded_at": rfc3339(r.loaded_at),
                "last_error": r.last_error,
                "seen_seconds_ago": round(max(0.0, now - r.seen_at), 1),
            }
            for r in await self.gw.store.replicas(now - REPLICA_GONE)
        ]

    def reload_soon(self) -> None:
        """SIGHUP: reload in a task of this object's own (one at a time; awaited at stop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.reload(), name="reload")

    async def stop(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def reload(self) -> Reloaded:
        async with self._lock:
            old = self.gw.config
            config, registry, problems = await asyncio.to_thread(self._load, old.path)
            if config is None or registry is None or any(p.is_error for p in problems):
                self.problems = tuple(problems)
                for problem in problems:
                    log.error("reload refused: %s", problem)
                await self._report_now()
                return Reloaded(False, self.generation, self.problems)
            changed = [key for key in RESTART_ONLY if getattr(config, key) != getattr(old, key)]
            if changed:
                later = ", ".join(changed)
                log.warning("reload: changes to %s take effect at the next start", later)
            config = replace(
                config, **{key: getattr(old, key) for key in (*RESTART_ONLY, "store")}
            )
            router = Router(config.subscriptions, ordering_attributes(config.subscriptions))
            await self.gw.dispatcher.reconfigure(config.subscriptions)
            # Requests that began before this line finish with the old config.
            self._ingest.config, self._ingest.registry, self._ingest.router = (
                config, registry, router,
            )  # fmt: skip
            self.gw.config, self.gw.registry, self.gw.router = config, registry, router
            self.generation += 1
            self.loaded_at = self.gw.clock()
            self.problems = ()
            log.info(
                "config reloaded: generation %d, %d subscriptions",
                self.generation, len(config.subscriptions),
            )  # fmt: skip
            await self._report_now()
            return Reloaded(True, self.generation, tuple(problems))

    # -- status ---------------------------------------------------------------------------

    async def subscriptions(self) -> list[dict[str, Any]]:
        store, dispatcher = self.gw.store, self.gw.dispatcher
        counts, paused = await store.counts(), await store.paused()
        now = self.gw.clock()
        configured = list(dispatcher.subscriptions)
        removed = sorted(n for n, c in counts.items() if n not in configured and c.backlog)
        out = []
        for name in configured + removed:
            c = counts.get(name)
            if name in removed:
                state = "removed"
            elif name in paused:
                state = "paused"
            elif dispatcher.breaker_open(name):
                state = "breaker-open"
            else:
                state = "active"
            oldest = c.oldest_pending_at if c else None
            out.append({
                "name": name,
                "state": state,
                "backlog": c.backlog if c else 0,
                "oldest_pending_seconds": round(max(0.0, now - oldest), 3) if oldest else 0,
                "delivered": c.delivered if c else 0,
                "failed": c.failed if c else 0,
                "dead_letters": c.dead_letters if c else 0,
                "last_error": c.last_error if c else None,
                "paused_reason": paused[name].reason if name in paused else None,
                "handshake": None,
            })  # fmt: skip
            # CONTRACT 5, handshake: a refusal holds deliveries; it is the reason to show.
            handshake = dispatcher.handshake(name) if name not in removed else None
            if handshake is not None:
                out[-1]["handshake"] = dict(handshake)
                out[-1]["last_error"] = handshake["error"] or out[-1]["last_error"]
        return out

    async def status(self) -> dict[str, Any]:
        config = {**self.config_json(), "replicas": await self.replicas_json()}
        return {"config": config, "subscriptions": await self.subscriptions()}

    def subscription(self, name: str) -> Subscription:
        sub = self.gw.dispatcher.subscriptions.get(name)
        if sub is None:
            raise NotFound(f"no subscription named {name!r} in the running config")
        return sub

    async def pause(self, name: str) -> None:
        self.subscription(name)
        await self.gw.dispatcher.pause(name)

    async def resume(self, name: str) -> None:
        self.subscription(name)
        await self.gw.dispatcher.resume(name)

    # -- dead letters, redrive, replay ----------------------------------------------------

    def time(self, text: str | None, what: str) -> float | None:
        return None if text is None else parse_time(text, self.gw.clock(), what)

    async def dead_letters(
        self, subscription: str | None, since: float | None, until: float | None, limit: int
    ) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        query = DeadLetterQuery(subscription, since, until, limit=min(limit, CHUNK))
        while len(found) < limit:
            page = await self.gw.store.dead_letters_where(query)
            found.extend(page)
            if len(page) < query.limit:
                break
            query = replace(query, after=page[-1].id)
        return found[:limit]

    async def redrive(self, sel: Selection) -> dict[str, Any]:
        self.subscription(sel.subscription)
        query = DeadLetterQuery(
            sel.subscription, sel.since, sel.until, sel.event_ids, sel.after,
            min(sel.limit or CHUNK, CHUNK),
        )  # fmt: skip
        matched = queued = 0
        while True:
            page = await self.gw.store.dead_letters_where(query)
            chosen = [dead.id for dead in page if sel.takes(dead.event)]
            matched += len(chosen)
            if chosen and not sel.dry_run:
                now = self.gw.clock()
                done = await asyncio.gather(*(self.gw.store.redeliver(i, now) for i in chosen))
                queued += sum(done)
            more = len(page) == query.limit
            if more:
                query = replace(query, after=page[-1].id)
            if not more or sel.limit is not None:
                break
        if queued:
            log.info("redrive: %d dead letters back into delivery", queued,
                     extra={"subscription": sel.subscription})  # fmt: skip
        return _counted(matched, queued, sel, query.after if more else None)

    async def replay(self, sel: Selection) -> dict[str, Any]:
        sub = self.subscription(sel.subscription)
        if sel.since is None:
            raise BadRequest("since is required")
        until = sel.until if sel.until is not None else self.gw.clock()
        after, matched, queued = sel.after, 0, 0
        chunk = min(sel.limit or CHUNK, CHUNK)
        while True:
            page = await self.gw.store.events_between(sel.since, until, after, chunk)
            seqs = [s.seq for s in page if match(sub, s.event) and sel.takes(s.event)]
            matched += len(seqs)
            if seqs and not sel.dry_run:
                queued += await self.gw.store.requeue(sub.name, seqs, self.gw.clock())
            more = len(page) == chunk
            after = page[-1].seq if page else after
            if not more or sel.limit is not None:
                break
        if queued:
            log.info("replay: %d events delivered again", queued, extra={"subscription": sub.name})
        return _counted(matched, queued, sel, after if more else None)

    # -- events ---------------------------------------------------------------------------

    async def history(self, source: str, id: str) -> dict[str, Any]:
        found = await self.gw.store.history(source, id)
        if found is None:
            raise NotFound(f"no stored event with source {source!r} and id {id!r}")
        return history_json(found)


    # -- reads for the dashboard -----------------------------------------------------------

    def describe(self, name: str) -> dict[str, Any]:
        """What a subscription selects and where it delivers (the sink URL without secrets)."""
        sub = self.gw.dispatcher.subscriptions.get(name)
        if sub is None:
            return {"name": name, "configured": False}
        retry = sub.delivery.retry
        return {
            "name": name,
            "configured": True,
            "sink": redact.url(sub.sink),
            "selects": selects(sub),
            "mode": str(sub.delivery.mode.value),
            "timeout": sub.delivery.timeout,
            "max_in_flight": sub.delivery.max_in_flight,
            "max_attempts": retry.max_attempts,
            "declared": f"{Path(sub.file).name}:{sub.line}" if sub.file else None,
        }

    async def recent_attempts(self, name: str, limit: int) -> list[dict[str, Any]]:
        return [
            {
                "source": r.source,
                "id": r.id,
                "attempt": r.tried.attempt,
                "time": rfc3339(r.tried.at),
                "status": r.tried.status,
                "latency_ms": round(r.tried.latency_ms, 1),
                "error": r.tried.error,
                "ok": r.tried.status is not None and 200 <= r.tried.status < 300,
            }
            for r in await self.gw.store.recent_attempts(name, limit)
        ]

    async def lookup(self, source: str, id: str) -> dict[str, Any]:
        """One event's history, its data as text, and whether each subscription of the running
        config takes it and why (the first filter that refuses it)."""
        found = await self.gw.store.history(source, id)
        if found is None:
            raise NotFound(f"no stored event with source {source!r} and id {id!r}")
        event = found.stored.event
        routing = []
        for sub in self.gw.dispatcher.subscriptions.values():
            taken, why = explain(sub, event)
            routing.append({"subscription": sub.name, "matched": taken, "why": why,
                            "selects": selects(sub)})  # fmt: skip
        return {**history_json(found), "data": data_text(event), "routing": routing}


def selects(sub: Subscription) -> str:
    parts = [f"types [{', '.join(sub.types)}]"] if sub.types else []
    if sub.source is not None:
        parts.append(f"source {sub.source}")
    parts.extend(f"filter {f.describe()}" for f in sub.filters)
    return "; ".join(parts) or "every event"


def data_text(event: Event, limit: int = 65536) -> str | None:
    """`data` as shown to an operator: text when it is text or JSON, else its size."""
    if event.data is None or event.kind == DataKind.NONE:
        return None
    if event.kind == DataKind.BINARY:
        return f"({len(event.data)} bytes of binary data)"
    text = event.data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


def _counted(matched: int, queued: int, sel: Selection, after: int | None) -> dict[str, Any]:
    return {"matched": matched, "queued": queued, "dry_run": sel.dry_run, "next": after}


def dead_letter_json(dead: DeadLetter) -> dict[str, Any]:
    return {
        "id": dead.event.id,
        "source": dead.event.source,
        "type": dead.event.type,
        "subscription": dead.subscription,
        "reason": dead.reason,
        "status": dead.status,
        "attempts": dead.attempts,
        "time": rfc3339(dead.updated_at),
        "delivery": dead.id,
    }


def history_json(found: EventHistory) -> dict[str, Any]:
    def deliveries() -> Iterator[dict[str, Any]]:
        for d in found.deliveries:
            yield {
                "delivery": d.id,
                "subscription": d.subscription,
                "kind": "dead_letter" if d.kind == Kind.DEAD_LETTER else "sink",
                "state": STATES.get(d.state, str(d.state)),
                "attempts": [
                    {
                        "attempt": t.attempt,
                        "time": rfc3339(t.at),
                        "status": t.status,
                        "latency_ms": round(t.latency_ms, 3),
                        "error": t.error,
                    }
                    for t in d.tries
                ],
                "reason": d.reason,
                "next_attempt": rfc3339(d.due_at) if d.state == State.PENDING else None,
            }

    stored = found.stored
    return {
        "event": dict(stored.event.attributes),
        "received_at": rfc3339(stored.received_at),
        "producer": stored.producer,
        "deliveries": list(deliveries()),
    }
