"""The event loop `gateway serve` runs on: uvloop where the platform has it, else asyncio's own.

uvloop (libuv) makes the socket and timer work of every request and delivery attempt cheaper;
it is an optional dependency (not built for Windows), so its absence is never an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """A function that makes a new event loop of the kind `gateway serve` uses."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def name() -> str:
    """`uvloop` or `asyncio`: the loop `factory` makes (shown by benchmarks beside figures)."""
    return "asyncio" if factory() is asyncio.new_event_loop else "uvloop"
