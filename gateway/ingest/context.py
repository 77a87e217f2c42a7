"""What the ingest handlers may use: config, schemas, the router, the store, metrics.

Ingest and delivery meet only in the store (ingest commits; the store tells the dispatcher that
work is there), so nothing here reaches the dispatcher or the sender.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.config.model import Config
from gateway.ops.metrics import Metrics
from gateway.routing.router import Router
from gateway.schemas import SchemaRegistry
from gateway.store.base import Store


@dataclass
class Ingest:
    config: Config
    registry: SchemaRegistry
    store: Store
    router: Router
    metrics: Metrics
    clock: Callable[[], float] = time.time
    unmatched_types: set[str] = field(default_factory=set)  # labels of the unmatched counter


INGEST = web.AppKey("ingest", Ingest)
