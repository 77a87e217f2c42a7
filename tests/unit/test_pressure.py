"""Ingest first (`gateway.delivery.pressure`): delivery yields only while the loop's thread is
CPU-bound *and* the backlog grows (arrivals make more delivery rows than the dispatcher starts),
for as long as both last; while it yields a pass starts at most `YIELD_STARTS` attempts and
passes are `YIELD_PAUSE` apart; `yielded` is told the seconds of the windows it yielded in. Fake
clock, CPU time and row counts, plus the real `time.thread_time`."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from gateway.delivery.pressure import SATURATED, WINDOW, YIELD_PAUSE, YIELD_STARTS, Pressure

BUSY = 1.0  # a loop thread using all of a core
IDLE = SATURATED - 0.1  # one that still has some to spare


class Fake:
    """The readings `Pressure` takes, moved on by the test: the clock, the loop thread's CPU
    time, the count of delivery rows appended and of rows started; `reads` counts readings of
    the CPU time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.used = 50.0
        self.appended = 7
        self.started = 3
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def cpu(self) -> float:
        self.reads += 1
        return self.used

    def rows(self) -> int:
        return self.appended

    def starts(self) -> int:
        return self.started

    def run(self, seconds: float, busy: float = BUSY, arrivals: int = 0, started: int = 0) -> None:
        """`seconds` pass with the thread busy for `busy` of them, `arrivals` rows appended and
        `started` rows started."""
        self.now += seconds
        self.used += seconds * busy
        self.appended += arrivals
        self.started += started


def pressure(fake: Fake, told: list[float] | None = None) -> Pressure:
    told = [] if told is None else told
    return Pressure(fake.rows, fake.starts, told.append, clock=fake.clock, cpu=fake.cpu)


def yielding(fake: Fake, told: list[float] | None = None) -> Pressure:
    """A pressure that yields after one saturated window with arrivals."""
    made = pressure(fake, told)
    fake.run(WINDOW, arrivals=3)
    assert made.update()
    return made


def test_no_reading_before_a_window_has_passed() -> None:
    fake = Fake()
    made = pressure(fake)
    fake.run(WINDOW * 0.6, arrivals=5)
    assert made.update() is False
    assert made.yielding is False
    assert fake.reads == 1  # the one taken when it was made
    fake.run(WINDOW * 0.6)  # saturated with arrivals over the whole 1.2 windows since
    assert made.update() is True
    assert fake.reads == 2


@pytest.mark.parametrize("busy", [SATURATED + 0.01, BUSY])
def test_saturated_with_arrivals_yields(busy: float) -> None:
    fake = Fake()
    made = pressure(fake)
    fake.run(WINDOW * 1.5, busy=busy, arrivals=1)
    assert made.update() is True
    assert made.yielding is True


def test_a_backlog_draining_alone_is_never_slowed() -> None:
    """Saturated, but nothing appended: delivery's own work is what keeps the loop busy."""
    fake = Fake()
    made = pressure(fake)
    for _ in range(5):
        fake.run(WINDOW * 1.5, arrivals=0)
        assert made.update() is False


@pytest.mark.parametrize(("arrivals", "started"), [(3, 600), (300, 300)])
def test_a_backlog_that_does_not_grow_is_not_slowed(arrivals: int, started: int) -> None:
    """A backlog draining while a few events trickle in, or arrivals just matched by starts:
    delivery keeps the loop busy and keeps up, so it goes on at full speed."""
    fake = Fake()
    made = pressure(fake)
    for _ in range(5):
        fake.run(WINDOW * 1.5, arrivals=arrivals, started=started)
        assert made.update() is False


def test_yielding_lasts_while_the_backlog_grows_faster_than_rows_start() -> None:
    fake = Fake()
    made = yielding(fake)
    for _ in range(5):  # a burst: many rows appended, a few started while yielding
        fake.run(WINDOW * 1.5, arrivals=1500, started=80)
        assert made.update() is True
    fake.run(WINDOW * 1.5, arrivals=60, started=80)  # arrivals slowed: the backlog shrinks
    assert made.update() is False


def test_arrivals_with_cpu_to_spare_do_not_yield() -> None:
    fake = Fake()
    made = pressure(fake)
    for _ in range(5):
        fake.run(WINDOW * 1.5, busy=IDLE, arrivals=100)
        assert made.update() is False


@pytest.mark.parametrize(("busy", "arrivals"), [(BUSY, 0), (IDLE, 10)])
def test_yielding_ends_at_the_next_reading_once_a_condition_stops(
    busy: float, arrivals: int
) -> None:
    fake = Fake()
    made = yielding(fake)
    fake.run(WINDOW * 0.6, busy=busy, arrivals=arrivals)
    assert made.update() is True  # no reading yet: as it was
    fake.run(WINDOW * 0.6, busy=busy, arrivals=arrivals)
    assert made.update() is False
    assert made.yielding is False


def test_yielded_is_told_the_windows_it_yielded_in() -> None:
    fake = Fake()
    told: list[float] = []
    made = pressure(fake, told)
    fake.run(0.15, arrivals=1)
    assert made.update() is True  # it yields from now on; the window before did not
    assert told == []
    fake.run(0.2, arrivals=1)
    assert made.update() is True
    fake.run(0.05, arrivals=0)  # within a window: no reading, nothing told
    assert made.update() is True
    assert told == [pytest.approx(0.2)]
    fake.run(0.25, arrivals=0)  # it yielded through this window; it stops at its end
    assert made.update() is False
    assert told == [pytest.approx(0.2), pytest.approx(0.3)]
    fake.run(0.3, arrivals=0)
    assert made.update() is False
    fake.run(0.2, busy=IDLE, arrivals=4)
    assert made.update() is False
    assert told == [pytest.approx(0.2), pytest.approx(0.3)]


def test_starts_are_capped_only_while_yielding() -> None:
    fake = Fake()
    made = pressure(fake)
    assert [made.starts(free) for free in (0, 2, YIELD_STARTS, 50, 256)] == [0, 2, 4, 50, 256]
    made = yielding(fake)
    assert YIELD_STARTS == 4
    assert [made.starts(free) for free in (0, 2, YIELD_STARTS, 50, 256)] == [0, 2, 4, 4, 4]


Slept = list[tuple[asyncio.Task[object] | None, float]]


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> Slept:
    """Each `asyncio.sleep` (the one `Pressure.space` calls), with the task that slept; each
    still gives the loop a turn."""
    delays: Slept = []
    real = asyncio.sleep

    async def sleep(delay: float) -> None:
        delays.append((asyncio.current_task(), delay))
        await real(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return delays


def mine(slept: Slept) -> list[float]:
    return [delay for task, delay in slept if task is asyncio.current_task()]


async def test_space_does_not_wait_while_not_yielding(slept: Slept) -> None:
    made = pressure(Fake())
    assert await made.space(0.25) == 0.25
    assert await made.space(0.0) == 0.0
    assert mine(slept) == []


async def test_space_pauses_first_while_yielding(slept: Slept) -> None:
    made = yielding(Fake())
    assert await made.space(0.25) == pytest.approx(0.25 - YIELD_PAUSE)
    assert await made.space(YIELD_PAUSE / 2) == 0.0  # never negative
    assert await made.space(0.0) == 0.0  # a pass that leased goes on after the pause
    assert mine(slept) == [YIELD_PAUSE] * 3


# The real CPU clock of the current thread (`time.thread_time`), as the dispatcher uses it.


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_busy_thread_with_arrivals_yields() -> None:
    arrivals = itertools.count()  # one more event at every reading
    made = Pressure(lambda: next(arrivals), lambda: 0)
    for _ in range(30):  # on a shared machine a window may find the thread descheduled
        spin(WINDOW * 1.5)
        if made.update():
            break
    assert made.yielding


def test_a_sleeping_thread_uses_no_cpu_and_does_not_yield() -> None:
    arrivals = itertools.count()
    made = Pressure(lambda: next(arrivals), lambda: 0)
    time.sleep(WINDOW * 1.5)
    assert made.update() is False
