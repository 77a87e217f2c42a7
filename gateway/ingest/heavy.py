"""Large bodies are parsed and validated in a worker process, so their CPU never stalls ingest.

Turning a megabyte of JSON into Python objects and validating it costs tens of milliseconds and
holds the GIL in long stretches: in a thread it still stalls the event loop, and the objects
fragment the heap of the process that made them. Bodies over `PROCESS_BYTES` therefore go to one
worker process that runs the same code (`modes.parse`, `bodies.decode`, the schema registry
loaded from the same folder) and hands back only what the request needs: the events as
attributes and data bytes (their parsed value is dropped; a `data` filter parses it again if it
must) and, per event, the schema verdict as plain values. Small bodies stay on the loop, where
they cost well under a millisecond.

The worker is recycled after `RECYCLE_AFTER` bodies, which gives its memory back; a request
that finds the worker busy waits its turn (one body at a time, so a flood of large bodies
queues here instead of taking every core).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from multidict import CIMultiDict

from gateway.errors import (
    Backpressure,
    GatewayError,
    InvalidEvent,
    SchemaViolation,
    StoreUnavailable,
    Violation,
)
from gateway.event import DataKind, Event
from gateway.ingest import modes
from gateway.schemas import SchemaRegistry

PROCESS_BYTES = 64 * 1024
RECYCLE_AFTER = 500

# A verdict crosses the process boundary as plain values: None (valid) or
# (error class name, detail, [(pointer, detail), ...], truncated).
Verdict = tuple[str, str, list[tuple[str, str]], bool] | None
# An event crosses it as (attributes, data, kind).
Plain = tuple[dict[str, Any], bytes | None, int]

_ERRORS: Mapping[str, type[GatewayError]] = {
    cls.__name__: cls for cls in (InvalidEvent, SchemaViolation)
}

_registry: SchemaRegistry | None = None  # the worker's own, loaded once per worker


def _load(folder: str) -> None:
    global _registry
    _registry, _ = SchemaRegistry.load(Path(folder))


def _verdict(event: Event, unknown_types: str) -> Verdict:
    assert _registry is not None, "the worker's registry is loaded by its initializer"
    try:
        _registry.validate(event, unknown_types)
    except GatewayError as error:
        found = [(v.pointer, v.detail) for v in error.errors]
        return type(error).__name__, error.detail, found, error.truncated
    return None


def _plain(event: Event) -> Plain:
    return dict(event.attributes), event.data, int(event.kind)


Parsed = tuple[str, list[Plain], list[Verdict]]


def _parse(headers: CIMultiDict[str], body: bytes, unknown_types: str) -> Parsed | Verdict:
    """In the worker: the content mode, the events and their verdicts; or why the body fails."""
    try:
        mode, events = modes.parse(headers, body)
    except GatewayError as error:
        return type(error).__name__, error.detail, [], False
    return mode.value, [_plain(e) for e in events], [_verdict(e, unknown_types) for e in events]


def _validate(plain: Plain, unknown_types: str) -> Verdict:
    attributes, data, kind = plain
    return _verdict(Event(attributes, data, DataKind(kind)), unknown_types)


def raise_for(verdict: Verdict) -> None:
    """Raise the error a worker's verdict stands for (nothing when it is None)."""
    if verdict is None:
        return
    name, detail, found, truncated = verdict
    cls = _ERRORS.get(name, InvalidEvent)
    raise cls(detail, errors=[Violation(p, d) for p, d in found], truncated=truncated)


class HeavyWork:
    """The worker process for large bodies, owned by the app (started and stopped with it)."""

    def __init__(self, schemas: Path, unknown_types: str) -> None:
        self._schemas = str(schemas)
        self._unknown_types = unknown_types
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        # spawn: the worker does not inherit the event loop's threads and sockets.
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(self._schemas,),
            max_tasks_per_child=RECYCLE_AFTER,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def _run(self, work: Any, *args: Any) -> Any:
        if self._pool is None:
            raise StoreUnavailable("ingest is not running")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        except BrokenProcessPool:
            # The worker died (e.g. killed for memory): a new one takes the next body, and this
            # request may be sent again.
            self.close()
            self.start()
            raise Backpressure(
                "the worker for large bodies restarted; retry later", headers={"Retry-After": "1"}
            ) from None

    async def parse(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[modes.ContentMode, list[Event], list[Verdict]]:
        """`modes.parse` of a large body and the schema verdict of each event."""
        found = await self._run(_parse, CIMultiDict(headers), body, self._unknown_types)
        if len(found) == 4:  # a Verdict: the body itself failed
            raise_for(found)
        mode, plain, verdicts = found
        events = [Event(attributes, data, DataKind(kind)) for attributes, data, kind in plain]
        return modes.ContentMode(mode), events, verdicts

    async def validate(self, event: Event) -> None:
        """`SchemaRegistry.validate` of an event with large data."""
        raise_for(await self._run(_validate, _plain(event), self._unknown_types))
