"""The dispatcher: leases due deliveries and runs one attempt per row, within explicit bounds.

One loop owns leasing; each leased row becomes one named attempt task. Bounds: the subscription's
`max_in_flight` (per sink, and separately for its dead-letter sink) and the gateway-wide
`dispatch.max_in_flight`, shared fairly (`slots.py`): each subscription is guaranteed its share,
so a slow subscriber never takes the slots of the others. Outcomes go back to the store, which
commits them in groups; `retry.decide` says what an outcome means. An outcome the store cannot
take right now (a database blip) is kept and recorded again with backoff until its lease ends,
holding its slot meanwhile: delivered rows are not sent again just because the database
restarted. Rows this process appends may start without a lease (`handoffs.py`); pause, resume
and reload are in `control.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from gateway.config.model import Dispatch, Subscription
from gateway.delivery import batches
from gateway.delivery.attempts import Attempts
from gateway.delivery.batches import Batches
from gateway.delivery.breakers import Breakers
from gateway.delivery.control import GONE, Control
from gateway.delivery.handoffs import LEASE_MARGIN, Handoffs
from gateway.delivery.handshakes import Handshakes
from gateway.delivery.pressure import Pressure
from gateway.delivery.ratelimit import Rates
from gateway.delivery.sender import Sender
from gateway.delivery.slots import Plan, Slots
from gateway.errors import StoreUnavailable
from gateway.ops.logs import Throttled
from gateway.ops.metrics import Metrics
from gateway.store.base import (
    Kind,
    Leased,
    Outcome,
    PausedOn,
    Retry,
    Store,
)

log = logging.getLogger("gateway.delivery")

# Shortest idle sleep, so that a row due "now" that could not be leased does not spin the loop.
MIN_IDLE = 0.005
# A subscription with attempts in flight leases again once this fraction of its
# max_in_flight is free (see `_room`).
LEASE_FRACTION = 4
# Delays between tries to record an outcome the store refused; the last one repeats.
RECORD_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)


class Dispatcher(Control, Handoffs):
    def __init__(
        self,
        store: Store,
        sender: Sender,
        subscriptions: Sequence[Subscription],
        dispatch: Dispatch,
        *,
        retention: float,
        dedupe_window: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._sender = sender
        self._subs = {sub.name: sub for sub in subscriptions}
        self._dispatch = dispatch
        self._retention = retention
        self._dedupe_window = dedupe_window
        self._metrics = metrics or Metrics()
        self._clock = clock
        self._inflight: Counter[tuple[str, Kind]] = Counter()
        self._slots = Slots(
            dispatch.max_in_flight, {sub.name: sub.delivery.max_in_flight for sub in subscriptions}
        )
        self._turn = 0  # where the next pass over the subscriptions starts
        self._started = 0  # rows whose attempts started (ingest first: pressure.py)
        self._pressure = Pressure(  # ingest first: gateway.delivery.pressure
            lambda: store.appended,
            lambda: self._started,
            lambda seconds: self._metrics.inc("gateway_delivery_yielded_seconds_total", seconds),
        )
        # Handoff: the slots of the last pass, and the subscriptions that had nothing more due
        # then (a row appended for one of them may start at once without breaking arrival order).
        self._plan: Plan | None = None
        self._caught_up: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._abandoned: list[Leased] = []
        self._paused: dict[str, PausedOn] = {}
        self._paused_read = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        self._unrecorded = Throttled(log)
        self._unavailable = Throttled(log)
        # Circuit breakers (CONTRACT 5): gateway.delivery.breakers.
        self._breakers = Breakers(store, self._metrics, clock)
        self._breakers.reconfigure(subscriptions)
        self._rates = Rates(store)  # rate limits (CONTRACT 5): gateway.delivery.ratelimit
        # Validation handshakes (CONTRACT 5): gateway.delivery.handshakes; they lower rates.
        self._handshakes = Handshakes(store, sender, clock, self._handshake_changed)
        self._handshakes.reconfigure(subscriptions)
        self._rates.reconfigure(self._handshakes.rated(subscriptions))
        self._attempts = Attempts(sender, self._metrics, clock, self._gone)  # one row's attempt
        # Batch delivery (CONTRACT 5): gateway.delivery.batches.
        self._batches = Batches(
            store, sender, self._breakers, self._rates, self._metrics, clock, self._gone
        )

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Resume subscriptions whose sink changed since they were paused; start the loops."""
        for name, on in (await self._store.paused()).items():
            sub = self._subs.get(name)
            # The comparison hashes slowly (the URL is not stored): off the event loop.
            if await self._sink_changed(sub, on):
                await self._store.resume(name)
                log.info("subscription resumed: its sink changed", extra={"subscription": name})
                continue
            if sub is not None and on.fingerprint is None:
                # Paused before sinks were stored redacted: keep the pause, drop the URL.
                on = replace(await asyncio.to_thread(PausedOn.of, sub.sink), reason=on.reason)
                await self._store.pause(name, on, on.reason, self._clock())
            self._paused[name] = on
        self._paused_read = self._clock()
        await self._breakers.refresh()
        await self._handshakes.refresh()
        self._store.hand_off(self._handoff())
        self._loop = asyncio.create_task(self._run(), name="dispatcher")
        self._purger = asyncio.create_task(self._purge(), name="purger")

    def wake(self) -> None:
        """Look at the store now (new events were committed or a slot came free)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return self._slots.in_flight

    @property
    def paused(self) -> frozenset[str]:
        return frozenset(self._paused)

    async def stop(self, grace: float) -> None:
        """Stop leasing, give in-flight attempts `grace` seconds, then cancel and give back."""
        self._stopping.set()
        self._store.hand_off(None)
        self._wake.set()
        if self._purger is not None:
            self._purger.cancel()
        for task in (self._loop, self._purger):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        await self._handshakes.stop()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._abandoned:
            now = self._clock()
            try:
                await self._store.finish([Retry(row, None, now) for row in self._abandoned], now)
            except StoreUnavailable:
                log.warning("could not give back %d leases; they expire", len(self._abandoned))
            self._abandoned.clear()

    # -- leasing --------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._refresh_paused()
                self._pressure.update()
                leased = await self._fill()
                timeout = await self._idle_timeout(leased)
            except StoreUnavailable as exc:
                self._unavailable.warning("store unavailable while leasing: %s", exc.detail)
                timeout = self._dispatch.poll_interval
            except Exception:
                log.exception("dispatcher loop failed; retrying")
                timeout = self._dispatch.poll_interval
            timeout = await self._pressure.space(timeout)  # ingest first: passes spaced out
            if timeout > 0 and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _refresh_paused(self) -> None:
        """Pick up pauses made by other replicas sharing the store, at most once a poll."""
        now = self._clock()
        if now - self._paused_read < self._dispatch.poll_interval:
            return
        self._paused_read = now
        self._paused = dict(await self._store.paused())
        await self._breakers.refresh()
        await self._handshakes.refresh()

    def _room(self, sub: Subscription, kind: Kind, plan: Plan) -> int:
        cap = sub.delivery.max_in_flight
        busy = self._inflight[(sub.name, kind)]
        own = cap - busy
        if busy and own < cap // LEASE_FRACTION:
            # Near its own bound the pipeline is full: wait until a quarter of it is free and
            # lease that at once, one transaction for many rows instead of one per row freed.
            return 0
        return min(own, plan.room(sub.name))

    async def _fill(self) -> int:
        """Lease what every subscription has room for; return how many rows were leased. Each
        pass starts one subscription further, so slots beyond the shares go round."""
        count = 0
        now = self._clock()
        plan = self._slots.plan(now)
        plan.free = self._pressure.starts(plan.free)  # ingest first: fewer starts per pass
        subs = list(self._subs.values())
        self._turn = (self._turn + 1) % max(1, len(subs))
        self._handshakes.start_due(now)  # handshake: ask the sinks that have not consented
        self._plan = plan
        for sub in subs[self._turn :] + subs[: self._turn]:
            for kind in (Kind.SINK, Kind.DEAD_LETTER):
                if not self._held(sub, kind, now):
                    count += await self._fill_one(sub, kind, plan, now)
                elif kind is Kind.SINK:
                    self._caught_up.discard(sub.name)
        return count

    def _held(self, sub: Subscription, kind: Kind, now: float) -> bool:
        """Whether no SINK row of `sub` may be leased now (dead-letter notices never wait)."""
        if kind is not Kind.SINK:
            return False
        return (
            sub.name in self._paused
            or self._breakers.holds(sub.name, now)  # breaker: an open one holds the sink's rows
            or self._handshakes.holds(sub.name)  # handshake: no consent yet
        )

    async def _fill_one(self, sub: Subscription, kind: Kind, plan: Plan, now: float) -> int:
        room = self._room(sub, kind, plan)
        if room <= 0:
            return 0
        probe = kind is Kind.SINK and self._breakers.probe_due(sub.name, now)
        room = 1 if probe else room  # breaker: a due probe is one row
        lease_for = sub.delivery.timeout + LEASE_MARGIN
        if batches.handles(sub, kind):  # batch: a batch per slot, token and attempt
            took = await self._batches.fill(sub, room, probe, now, lease_for, self._spawn_batch)
            plan.took(sub.name, len(took))
            return sum(took)
        if kind is Kind.SINK:  # rate limit: one token per attempt
            room = await self._rates.allow(sub.name, room, now)
            if room <= 0:
                return 0
        rows = await self._store.lease(sub.name, kind, room, now, lease_for)
        if kind is Kind.SINK:  # handoff: with fewer due rows than room, none is left behind
            if len(rows) < room and not probe:
                self._caught_up.add(sub.name)
            else:
                self._caught_up.discard(sub.name)
        if probe:  # breaker: replicas race for the probe
            rows = await self._breakers.claim(sub, rows, now, now + lease_for)
        if kind is Kind.SINK:  # rate limit: tokens not spent are kept
            self._rates.unused(sub.name, room - len(rows))
        plan.took(sub.name, len(rows))
        for row in rows:
            self._reserve(sub.name, kind)
            self._spawn(sub, row, now + lease_for)
        return len(rows)

    async def _idle_timeout(self, leased: int) -> float:
        total, bound = self._slots.in_flight, self._dispatch.max_in_flight
        if leased and total < bound:
            return 0.0
        poll = self._dispatch.poll_interval
        if total >= bound:
            return poll
        plan = self._slots.plan(self._clock())
        now = self._clock()
        names = [
            sub.name
            for sub in self._subs.values()
            if sub.name not in self._paused and self._room(sub, Kind.SINK, plan) > 0
        ]
        probe = self._breakers.next_probe(names, now)  # breaker: held ones wake at their probe
        names = [name for name in names if not self._breakers.holds(name, now)]
        asked = self._handshakes.next_try(now)  # handshake: held ones wake at the next ask
        names = [name for name in names if not self._handshakes.holds(name)]
        token = self._rates.next_token(now)  # rate limit: out of tokens, wake at the next one
        names = [name for name in names if not self._rates.waiting(name)]
        linger = self._batches.next_wake(now)  # batch: a held short batch wakes at its linger
        names = [name for name in names if not self._batches.lingering(name, now)]
        due = await self._store.next_due(names) if names else None
        for wake in (probe, token, asked, linger):
            if wake is not None:
                due = wake if due is None else min(due, wake)
        if due is None:
            return poll
        return min(max(due - self._clock(), MIN_IDLE), poll)

    def _spawn(self, sub: Subscription, row: Leased, lease_ends: float) -> None:
        """One row's attempt, in a slot already reserved (`_reserve`)."""
        work = functools.partial(self._one, sub, row)
        self._launch(sub, [row], work, lease_ends, f"deliver:{sub.name}:{row.id}")

    def _spawn_batch(self, sub: Subscription, rows: list[Leased], lease_ends: float) -> None:
        """Batch delivery (CONTRACT 5): one attempt, one slot, for the rows of one batch."""
        self._reserve(sub.name, Kind.SINK)
        shielded = self._breakers.shield(sub)
        work = functools.partial(self._batches.deliver, sub, shielded, rows)
        self._launch(sub, rows, work, lease_ends, f"deliver:{sub.name}:batch{rows[0].batch}")

    def _reserve(self, name: str, kind: Kind) -> None:
        self._inflight[(name, kind)] += 1
        self._slots.take(name, self._clock())

    def _launch(
        self,
        sub: Subscription,
        rows: list[Leased],
        work: Callable[[], Awaitable[list[Outcome]]],
        lease_ends: float,
        name: str,
    ) -> None:
        self._started += len(rows)
        task = asyncio.create_task(self._attempt(sub, rows, work, lease_ends), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one attempt ----------------------------------------------------------------------

    async def _one(self, sub: Subscription, row: Leased) -> list[Outcome]:
        outcome = await self._attempts.deliver(self._breakers.shield(sub), row)
        return [await self._breakers.after(sub, row, outcome)]  # breaker

    async def _attempt(
        self,
        sub: Subscription,
        rows: list[Leased],
        work: Callable[[], Awaitable[list[Outcome]]],
        lease_ends: float,
    ) -> None:
        try:
            await self._record(await work(), lease_ends)
        except asyncio.CancelledError:
            self._abandoned.extend(rows)
            raise
        except Exception:
            log.exception("delivery attempt failed unexpectedly", extra={"subscription": sub.name})
        finally:
            self._inflight[(sub.name, rows[0].kind)] -= 1
            self._slots.give(sub.name, self._clock())
            self._wake.set()

    async def _record(self, outcomes: Sequence[Outcome], lease_ends: float) -> None:
        """Record the outcome; while the store refuses, try again with backoff until the lease
        ends (past it another holder may have the row, and the fenced write would change
        nothing)."""
        tries = 0
        while True:
            try:
                await self._store.finish(outcomes, self._clock())
                return
            except StoreUnavailable as exc:
                delay = RECORD_DELAYS[min(tries, len(RECORD_DELAYS) - 1)]
                if self._clock() + delay >= lease_ends:
                    self._unrecorded.warning(
                        "outcome not recorded (%s); the row is delivered again", exc.detail
                    )
                    return
                if tries == 0:
                    self._unrecorded.warning(
                        "outcome not recorded yet (%s); trying again", exc.detail
                    )
            tries += 1
            await asyncio.sleep(delay)

    async def _gone(self, sub: Subscription, done: float) -> None:
        """CE webhook 2.2: a 410 retires the target; pause the subscription."""
        on = await asyncio.to_thread(PausedOn.of, sub.sink)
        try:
            await self._store.pause(sub.name, on, GONE, done)
        except StoreUnavailable as exc:  # paused here still; the outcome is recorded below
            log.warning("pause not stored (%s)", exc.detail, extra={"subscription": sub.name})
        self._paused[sub.name] = on
        log.warning("subscription paused: its sink answered 410 Gone",
                    extra={"subscription": sub.name})

    # -- retention ------------------------------------------------------------------------

    async def _purge(self) -> None:
        while True:
            await asyncio.sleep(self._dispatch.purge_interval)
            try:
                # CONTRACT 6: a removed subscription's rows are dead-lettered past retention.
                await self._store.expire_removed(list(self._subs), self._clock(), self._retention)
                removed = await self._store.purge(
                    self._clock(), self._retention, self._dedupe_window
                )
            except StoreUnavailable as exc:
                log.warning("purge skipped: %s", exc.detail)
                continue
            if removed:
                log.info("purged %d events past retention", removed)
