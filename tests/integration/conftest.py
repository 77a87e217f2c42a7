"""Fixtures for integration tests: a deployment in tmp_path, the real gateway app, subscribers."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import assemble, build
from gateway.config.loader import load
from gateway.runtime import Gateway
from gateway.schemas import SchemaRegistry
from tests.integration.process import Process
from tests.integration.subscriber import Subscriber
from tests.schema_oracle import check_deployment

ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.test/order.created/v1",
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
    },
}

FAST_RETRY = {"initial_delay": "20ms", "max_delay": "100ms", "max_attempts": 4, "jitter": 0}


def write_deployment(
    root: Path,
    subscriptions: list[dict[str, Any]],
    gateway: dict[str, Any] | None = None,
    schemas: dict[str, dict[str, Any]] | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> Path:
    """Write config/gateway.yaml, config/subscriptions/test.yaml, config/sources/test.yaml
    (when `sources` is given) and schemas/; return the path."""
    config = root / "config"
    (config / "subscriptions").mkdir(parents=True, exist_ok=True)
    (root / "schemas").mkdir(exist_ok=True)
    main = {
        "store": "sqlite:///data/gateway.db",
        "schemas": "../schemas",
        "subscriptions": "subscriptions/",
        "dispatch": {"poll_interval": "100ms"},
        **(gateway or {}),
    }
    (config / "gateway.yaml").write_text(yaml.safe_dump(main))
    (config / "subscriptions" / "test.yaml").write_text(
        yaml.safe_dump({"subscriptions": subscriptions})
    )
    if sources is not None:
        (config / "sources").mkdir(exist_ok=True)
        (config / "sources" / "test.yaml").write_text(yaml.safe_dump({"sources": sources}))
    for name, schema in (schemas if schemas is not None else
                         {"com.example.order.created": ORDER_SCHEMA}).items():
        (root / "schemas" / f"{name}.json").write_text(json.dumps(schema))
    # Every deployment the loader takes validates against the editor schemas too.
    check_deployment(config / "gateway.yaml", os.environ)
    return config / "gateway.yaml"


@dataclass
class Running:
    client: TestClient[Any, Any]
    gateway: Gateway
    subscriber: Subscriber
    sink: str  # base URL of the subscriber

    async def post(self, path: str = "/events", **kwargs: Any) -> Any:
        return await self.client.post(path, **kwargs)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def subscriber() -> AsyncIterator[tuple[Subscriber, str]]:
    sub = Subscriber()
    server = TestServer(sub.app)
    await server.start_server()
    yield sub, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def start(
    tmp_path: Path, subscriber: tuple[Subscriber, str]
) -> AsyncIterator[Start]:
    """Start the real gateway app over a deployment; `{sink}` in sinks is the subscriber URL."""
    sub, base = subscriber
    clients: list[TestClient[Any, Any]] = []

    async def _start(
        subscriptions: list[dict[str, Any]],
        gateway: dict[str, Any] | None = None,
        schemas: dict[str, dict[str, Any]] | None = None,
        sources: list[dict[str, Any]] | None = None,
    ) -> Running:
        rendered = json.loads(json.dumps(subscriptions).replace("{sink}", base))
        path = write_deployment(tmp_path, rendered, gateway, schemas, sources)
        config = load(path, env={})
        registry, problems = SchemaRegistry.load(config.schemas)
        assert not problems, problems
        gw = assemble(config, registry)
        client = TestClient(TestServer(build(gw)))
        await client.start_server()
        clients.append(client)
        return Running(client, gw, sub, base)

    yield _start
    for client in clients:
        await client.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for proc in started:
        proc.stop()
