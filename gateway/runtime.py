"""The running gateway's parts, held together by `app.py` for the ops endpoints, the command line
and tests. Ingest handlers never see this holder: they get `ingest.context.Ingest`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.config.model import Config
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.sender import Sender
from gateway.ops.metrics import Metrics
from gateway.routing.router import Router
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
    router: Router
    clock: Callable[[], float] = time.time
    ready: bool = False


GATEWAY = web.AppKey("gateway", Gateway)
