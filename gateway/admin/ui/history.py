"""The plots' history, kept in the process: one sample of every subscription's counts per
interval (10 s) for the last hour, in a bounded ring buffer, taken by a named background task
that starts and stops with the admin application.

Counts come from `Control.subscriptions`, so from the store: on PostgreSQL every replica plots
the whole deployment. Attempt durations come from this process's own histogram.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.admin.control import Control

log = logging.getLogger("gateway.admin.ui")

INTERVAL = 10.0
KEEP = 360  # one hour of samples
ATTEMPT = "gateway_attempt_duration_seconds"


@dataclass(frozen=True, slots=True)
class Point:
    """One subscription at one moment: cumulative counts, and the gauges as they were."""

    delivered: int
    failed: int
    backlog: int
    oldest: float
    attempt_seconds: float  # cumulative sum of attempt durations (this process)
    attempts: float  # cumulative number of attempts timed (this process)


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    points: Mapping[str, Point]


@dataclass(frozen=True, slots=True)
class Rates:
    """What the overview shows of a subscription's recent past; None where unknown yet."""

    delivered_per_min: float | None
    failed_per_min: float | None


def point(control: Control, row: Mapping[str, Any]) -> Point:
    name, metrics = row["name"], control.gw.metrics
    return Point(
        delivered=int(row["delivered"]),
        failed=int(row["failed"]),
        backlog=int(row["backlog"]),
        oldest=float(row["oldest_pending_seconds"]),
        attempt_seconds=metrics.value(f"{ATTEMPT}_sum", subscription=name),
        attempts=metrics.value(f"{ATTEMPT}_count", subscription=name),
    )


def sample_of(control: Control, at: float, rows: Iterable[Mapping[str, Any]]) -> Sample:
    return Sample(at, {row["name"]: point(control, row) for row in rows})


def _per_minute(now: float, later: float, earlier: float, then: float) -> float:
    return max(0.0, later - earlier) * 60.0 / max(now - then, 1e-9)


class History:
    """The ring buffer and the task that fills it."""

    def __init__(self, control: Control, interval: float = INTERVAL, keep: int = KEEP) -> None:
        self.control, self.interval = control, interval
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> Sample:
        rows = await self.control.subscriptions()
        taken = sample_of(self.control, self.control.gw.clock(), rows)
        self.samples.append(taken)
        return taken

    async def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.interval
            if not self.control.gw.ready:  # the admin listener starts before the store opens
                wait = min(0.2, self.interval)
            else:
                try:
                    await self.sample()
                except Exception as exc:  # the store may be briefly away; the plot has a gap
                    log.warning("dashboard history not sampled: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="ui-history")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            task, self._task = self._task, None
            try:
                await asyncio.wait_for(task, 5.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- reading ------------------------------------------------------------------------------

    def rates(self, now: Sample, name: str, window: float = 60.0) -> Rates:
        """Per minute over the last `window` seconds (or the oldest sample there is)."""
        current = now.points.get(name)
        before = [p for p in self.samples if name in p.points and p.at < now.at]
        inside = [p for p in before if now.at - p.at <= window + self.interval]
        base = inside[0] if inside else (before[-1] if before else None)
        if current is None or base is None:
            return Rates(None, None)
        then = base.points[name]
        return Rates(
            _per_minute(now.at, current.delivered, then.delivered, base.at),
            _per_minute(now.at, current.failed, then.failed, base.at),
        )

    def series(
        self, name: str, now: Sample | None = None, every: int = 1
    ) -> dict[str, list[float | None]]:
        """Per sample (every `every`-th, the newest kept): delivered and failed per minute,
        backlog, mean attempt latency (ms)."""
        kept = list(self.samples)[::-1][::every][::-1]
        samples: Sequence[Sample] = [*kept, *([now] if now is not None else [])]
        out: dict[str, list[float | None]] = {
            "delivered": [], "failed": [], "backlog": [], "latency": [], "at": [],
        }  # fmt: skip
        previous: Sample | None = None
        for s in samples:
            p = s.points.get(name)
            before = previous.points.get(name) if previous is not None else None
            out["at"].append(s.at)
            out["backlog"].append(float(p.backlog) if p else None)
            if p is None or before is None or previous is None or s.at <= previous.at:
                out["delivered"].append(None)
                out["failed"].append(None)
                out["latency"].append(None)
            else:
                out["delivered"].append(_per_minute(s.at, p.delivered, before.delivered,
                                                    previous.at))  # fmt: skip
                out["failed"].append(_per_minute(s.at, p.failed, before.failed, previous.at))
                timed = p.attempts - before.attempts
                out["latency"].append(
                    (p.attempt_seconds - before.attempt_seconds) * 1000 / timed if timed > 0
                    else None
                )  # fmt: skip
            previous = s
        return out
