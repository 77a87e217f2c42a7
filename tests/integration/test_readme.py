"""The README's examples, run as written: what it shows a user must be what the gateway does.

(The quickstart has a walk-through of its own.) Each test reads the snippet out of README.md, so
an edit that makes the README and the gateway disagree fails here.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import assemble, build
from gateway.config.loader import load
from gateway.schemas import SchemaRegistry
from tests.integration.process import ROOT, Process, free_port, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "config" / "gateway.yaml"


def section(heading: str) -> str:
    """The text of a README section, from its heading to the next heading of any level."""
    start = README.index(f"{heading}\n")
    following = re.search(r"^#{2,4} ", README[start + len(heading) :], re.MULTILINE)
    end = start + len(heading) + following.start() if following else len(README)
    return README[start:end]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def example_env(tmp_path: Path, port: int) -> dict[str, str]:
    """The example deployment, its store in a temporary folder and its sinks on closed ports."""
    dead = f"http://127.0.0.1:{free_port()}"
    return {
        "GATEWAY_PORT": str(port),
        "GATEWAY_ADMIN_PORT": str(free_port()),
        "GATEWAY_STORE": f"sqlite:///{tmp_path}/gateway.db",
        "BILLING_SINK": f"{dead}/billing",
        "WAREHOUSE_SINK": f"{dead}/warehouse",
        "ANALYTICS_SINK": f"{dead}/analytics",
        "ANALYTICS_DEAD_LETTER": f"{dead}/dead",
    }


@pytest.fixture
async def example(tmp_path: Path) -> AsyncIterator[TestClient[object, object]]:
    """The example deployment, in process."""
    config = load(EXAMPLE, env=example_env(tmp_path, free_port()))
    registry, problems = SchemaRegistry.load(config.schemas)
    assert not problems
    client: TestClient[object, object] = TestClient(TestServer(build(assemble(config, registry))))
    await client.start_server()
    yield client
    await client.close()


async def test_the_422_example_is_what_the_gateway_answers(
    example: TestClient[object, object],
) -> None:
    schemas = section("## Schemas")
    [command] = [b for b in blocks(schemas, "sh") if "order-invalid.json" in b]
    [shown] = blocks(schemas, "json")
    body = (ROOT / re.findall(r"@(\S+)", command)[0]).read_bytes()
    token = re.findall(r"Bearer ([\w-]+)", command)[0]
    resp = await example.post(
        "/events",
        data=body,
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "application/cloudevents+json"},
    )
    assert resp.status == 422
    answer = await resp.json(content_type=None)
    expected = orjson.loads(shown)
    assert {key: answer[key] for key in expected} == expected


async def test_the_in_house_producer_snippets_publish_to_the_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = section("### An in-house producer")
    [python] = blocks(producer, "python")
    [shell] = blocks(producer, "sh")
    port = free_port()
    for name, value in example_env(tmp_path, port).items():
        monkeypatch.setenv(name, value)
    # The example's development secret, as a newcomer has it.
    monkeypatch.delenv("SHOP_WEBHOOK_SECRET", raising=False)
    gateway = Process(EXAMPLE, port, tmp_path / "gateway.log")
    await gateway.start()
    env = dict(os.environ)
    try:
        env["GATEWAY_URL"] = gateway.url
        ran = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", python], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.startswith("202 "), ran.stdout
        ran = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", f"set -euo pipefail\n{shell}"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert ran.returncode == 0, ran.stderr
        assert orjson.loads(ran.stdout)["duplicates"] == []
        assert "ids" in orjson.loads(ran.stdout)
    finally:
        gateway.stop()


def test_the_route_source_command_runs_as_written() -> None:
    producer = section("### An in-house producer")
    [command] = re.findall(r"`(gateway route --source [^`]+)`", producer)
    ran = run_cli(*command.split()[1:], "-c", str(EXAMPLE))
    assert ran.returncode == 0, ran.stderr
    assert '"type": "com.example.order.created"' in ran.stdout
    assert "schema: valid" in ran.stdout


def test_every_dependency_is_in_the_dependencies_section() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = section("## Dependencies")
    table, _, test_only = listed.partition("Test-only")

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]

    for requirement in project["dependencies"]:
        assert f"| `{name(requirement)}` |" in table, requirement
    for requirement in project["optional-dependencies"]["test"]:
        assert f"`{name(requirement)}`" in test_only, requirement
