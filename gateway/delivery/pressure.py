"""Ingest first: whether delivery yields the event loop to arriving events.

Ingest and delivery share one event loop per process. While it has CPU to spare, each gets what
it asks for. Once the loop is CPU-bound they share it in proportion to the work each has queued,
and delivery (three attempts per event to three subscriptions, each with its store writes) takes
most of it: measured, a burst to three live subscriptions was accepted at a third of the rate the
same gateway accepted it with delivery stalled, so producers waited on deliveries. Gateways that
run ingest apart from delivery keep accepting fast and let the durable backlog absorb the burst.
Here delivery yields instead, while the loop's thread used at least `SATURATED` of a core over
the last `WINDOW` *and* the backlog grew in it (arrivals made more delivery rows than the
dispatcher started): each pass of the dispatcher starts at most `YIELD_STARTS` attempts, passes
come at least `YIELD_PAUSE` apart and no appended row is handed off. Delivery goes on at that
reduced rate (up to 200 attempts a second; each attempt costs about as much CPU as accepting an
event, so more would take from ingest what it yields) and catches up at full speed once arrivals
slow down; `dispatch.backlog_high_water` bounds what it leaves behind. A backlog draining while
a few events trickle in is not slowed: it shrinks.

Pure bookkeeping over three readings, the loop thread's CPU time, the store's count of delivery
rows appended and the dispatcher's count of rows started; the dispatcher calls `update` once
per pass, on the loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

WINDOW = 0.1  # seconds the loop's CPU use is measured over
SATURATED = 0.9  # share of one core above which the loop counts as CPU-bound
YIELD_STARTS = 4  # attempts one pass of the dispatcher may start while it yields
YIELD_PAUSE = 0.02  # seconds between two passes while it yields: at most 200 starts a second


class Pressure:
    """`yielding`: whether delivery yields now."""

    def __init__(
        self,
        appended: Callable[[], int],
        started: Callable[[], int],
        yielded: Callable[[float], None] = lambda seconds: None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        """`appended`: delivery rows this process's appends made so far; `started`: rows
        whose attempts the dispatcher started so far; `yielded`: told the seconds of each
        window delivery yielded in; `cpu`: CPU seconds of the thread that runs the loop
        (`time.thread_time`, read on that thread)."""
        self._appended = appended
        self._started = started
        self._yielded = yielded
        self._clock = clock
        self._cpu = cpu
        self._at = clock()
        self._cpu_at = cpu()
        self._appended_at = appended()
        self._started_at = started()
        self.yielding = False

    def update(self) -> bool:
        """Take a reading once `WINDOW` has passed since the last; whether delivery yields."""
        now = self._clock()
        elapsed = now - self._at
        if elapsed < WINDOW:
            return self.yielding
        cpu, appended, started = self._cpu(), self._appended(), self._started()
        if self.yielding:
            self._yielded(elapsed)
        busy = (cpu - self._cpu_at) / elapsed
        grew = appended - self._appended_at > started - self._started_at
        self.yielding = busy >= SATURATED and grew
        self._at, self._cpu_at = now, cpu
        self._appended_at, self._started_at = appended, started
        return self.yielding

    def starts(self, free: int) -> int:
        """How many of `free` slots one pass may fill now."""
        return min(free, YIELD_STARTS) if self.yielding else free

    async def space(self, idle: float) -> float:
        """Between two passes: while yielding, wait `YIELD_PAUSE` first; what is left of
        `idle`, the wait for a wake-up that follows."""
        if not self.yielding:
            return idle
        await asyncio.sleep(YIELD_PAUSE)
        return max(0.0, idle - YIELD_PAUSE)
