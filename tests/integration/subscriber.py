"""A real HTTP subscriber for tests: records every request and fails on command."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Subscriber:
    """Behaviours per path, consumed in order; the last one repeats. A behaviour is an int
    status, ("retry-after", status, value), ("redirect", location), "hang", or "reset".

    OPTIONS requests (the CloudEvents webhook validation handshake) are kept apart in `options`
    and answered by `answer_options` behaviours: an int status (no consent headers), or a dict
    of response headers sent with 200 (e.g. {"WebHook-Allowed-Origin": "*"}); by default 405,
    as a target that does not take the handshake answers."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._plans: dict[str, deque[Any]] = defaultdict(lambda: deque([200]))
        self.options: list[Received] = []
        self._answers: dict[str, deque[Any]] = defaultdict(lambda: deque([405]))
        self._changed = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    def plan(self, path: str, *behaviours: Any) -> None:
        self._plans[path] = deque(behaviours)

    def answer_options(self, path: str, *behaviours: Any) -> None:
        self._answers[path] = deque(behaviours)

    def options_at(self, path: str) -> list[Received]:
        return [r for r in self.options if r.path == path]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(done)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        await self.until(
            lambda: len(self.at(path)) >= count,
            timeout,
            f"{count} requests at {path} (got {len(self.at(path))})",
        )
        return self.at(path)

    async def wait_for_id(self, path: str, event_id: str, timeout: float = 10.0) -> Received:
        def arrived() -> list[Received]:
            return [r for r in self.at(path) if r.headers.get("ce-id") == event_id]

        await self.until(lambda: bool(arrived()), timeout, f"event {event_id} at {path}")
        return arrived()[0]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return await self._options(request)
        body = await request.read()
        plan = self._plans[request.path]
        behaviour = plan.popleft() if len(plan) > 1 else plan[0]
        async with self._changed:
            self.received.append(Received(request.path, dict(request.headers), body))
            self._changed.notify_all()
        if behaviour == "hang":
            await asyncio.sleep(3600)
        if behaviour == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if isinstance(behaviour, tuple) and behaviour[0] == "retry-after":
            return web.Response(status=behaviour[1], headers={"Retry-After": behaviour[2]})
        if isinstance(behaviour, tuple) and behaviour[0] == "redirect":
            return web.Response(status=302, headers={"Location": behaviour[1]})
        return web.Response(status=int(behaviour))

    async def _options(self, request: web.Request) -> web.StreamResponse:
        answers = self._answers[request.path]
        behaviour = answers.popleft() if len(answers) > 1 else answers[0]
        async with self._changed:
            self.options.append(Received(request.path, dict(request.headers), b""))
            self._changed.notify_all()
        if isinstance(behaviour, dict):
            return web.Response(status=200, headers={"Allow": "POST", **behaviour})
        return web.Response(status=int(behaviour))
