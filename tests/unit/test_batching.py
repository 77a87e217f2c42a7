"""Group commit's owned task (`gateway.store.batching.Batcher`), on a counting subclass: what an
idle store and a busy one put in one batch, and `held`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gateway.store.batching import Batcher


@dataclass
class Unit:
    name: str
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Counting(Batcher[Unit]):
    """Records the names in each batch and settles every unit."""

    def __init__(self, linger: int) -> None:
        super().__init__("test", linger=linger)
        self.batches: list[list[str]] = []

    async def _process(self, units: list[Unit]) -> None:
        self.batches.append([unit.name for unit in units])
        for unit in units:
            unit.future.set_result(None)

    async def submit(self, name: str) -> None:
        unit = Unit(name)
        self._enqueue(unit)
        await unit.future


async def trickle(batcher: Counting, names: list[str]) -> None:
    """One unit queued per turn of the event loop, as requests read one poll after another."""
    waiting = []
    for name in names:
        waiting.append(asyncio.ensure_future(batcher.submit(name)))
        await asyncio.sleep(0)
    await asyncio.gather(*waiting)


async def run(linger: int) -> list[list[str]]:
    batcher = Counting(linger)
    batcher.start()
    try:
        await batcher.submit("alone")  # an idle store: a batch of one, at once
        await asyncio.gather(batcher.submit("a"), batcher.submit("b"))  # busy now
        await trickle(batcher, [f"t{n}" for n in range(12)])
    finally:
        await batcher.stop()
    return batcher.batches


async def test_a_busy_batcher_lets_the_loop_go_round_before_the_next_batch() -> None:
    batches = await run(linger=2)
    assert batches[:2] == [["alone"], ["a", "b"]]
    later = batches[2:]
    assert [name for batch in later for name in batch] == [f"t{n}" for n in range(12)]
    assert len(later) <= 5  # units queued on the turns it let go by joined a batch
    assert max(len(batch) for batch in later) >= 3


async def test_without_linger_each_turn_makes_its_own_batch() -> None:
    batches = await run(linger=0)
    assert len(batches[2:]) >= 10  # the comparison the test above stands on


async def test_an_idle_batcher_does_not_wait() -> None:
    batcher = Counting(linger=2)
    batcher.start()
    try:
        for name in ("x", "y", "z"):  # one at a time: every batch has one unit
            await batcher.submit(name)
    finally:
        await batcher.stop()
    assert batcher.batches == [["x"], ["y"], ["z"]]


async def test_no_batch_runs_while_held() -> None:
    batcher = Counting(linger=0)
    batcher.start()
    try:
        async with batcher.held():
            waiting = asyncio.ensure_future(batcher.submit("queued"))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not waiting.done()
            assert batcher.batches == []
        await waiting
    finally:
        await batcher.stop()
    assert batcher.batches == [["queued"]]
