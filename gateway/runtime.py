"""The running gateway's parts, held together for the HTTP handlers and the command line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.config.model import Config
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.sender import Sender
from gateway.event import Event
from gateway.ops.metrics import Metrics
from gateway.routing.filters import match
from gateway.schemas import SchemaRegistry
from gateway.store.base import Store


@dataclass
class Gateway:
    config: Config
    registry: SchemaRegistry
    store: Store
    dispatcher: Dispatcher
    sender: Sender
    metrics: Metrics
    clock: Callable[[], float] = time.time
    ready: bool = False
    unmatched_types: set[str] = field(default_factory=set)  # labels of the unmatched counter

    def route(self, event: Event) -> tuple[str, ...]:
        """Names of the subscriptions whose types, source and filters match the event."""
        return tuple(sub.name for sub in self.config.subscriptions if match(sub, event))


GATEWAY = web.AppKey("gateway", Gateway)
