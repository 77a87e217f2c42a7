"""`gateway send` against the real `gateway serve`: 202 and exit 0, the token from the config, a
fresh id per run, the other exit codes; and the missing-config hint of every command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.config.model import TLS, Config, Producer, Server
from gateway.devtools.send import Options, target
from tests.integration.conftest import write_deployment
from tests.integration.events import received_event
from tests.integration.process import Process, free_port, run_cli
from tests.integration.subscriber import Subscriber

TOKEN = "send-test-token"
ORDER = {"order_id": "ord-1", "amount": 1200, "currency": "EUR"}


@dataclass
class Deployment:
    config: Path
    process: Process


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("send")
    port = free_port()
    config = write_deployment(
        root, [],
        gateway={"server": {"port": port},
                 "producers": [{"name": "shop", "token": TOKEN, "sources": ["/shop"]}]},
    )
    process = Process(config, port, root / "serve.log")
    asyncio.run(process.start())
    yield Deployment(config, process)
    process.stop()


def send(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("send", "-c", str(config), "--type", "com.example.order.created",
                     "--source", "/shop", *args)
    return result.returncode, result.stdout, result.stderr


def answer(stdout: str) -> tuple[str, dict[str, Any]]:
    status, _, body = stdout.partition("\n")
    return status, json.loads(body)


def test_accepted_exit_0_with_the_configs_token_and_a_fresh_id(deployment: Deployment) -> None:
    code, out, err = send(deployment.config, "--data", json.dumps(ORDER))
    assert code == 0, err
    status, body = answer(out)
    assert status == "202 Accepted"
    assert body["duplicates"] == []
    code, out, err = send(deployment.config, "--data", json.dumps(ORDER))
    assert code == 0, err
    again = answer(out)[1]
    assert again["duplicates"] == []  # a second run is a new event, not a duplicate
    assert again["ids"] != body["ids"]


def test_a_given_id_is_kept_so_resending_it_is_a_duplicate(deployment: Deployment) -> None:
    for _ in range(2):
        code, out, err = send(deployment.config, "--id", "fixed-1", "--data", json.dumps(ORDER))
        assert code == 0, err
    assert answer(out)[1] == {"ids": ["fixed-1"], "duplicates": ["fixed-1"]}


def test_data_from_a_file_in_structured_mode(deployment: Deployment, tmp_path: Path) -> None:
    data = tmp_path / "order.json"
    data.write_text(json.dumps(ORDER))
    code, out, err = send(deployment.config, "--mode", "structured", "--data", f"@{data}")
    assert code == 0, err
    assert out.startswith("202 Accepted")


def test_refusals_exit_1_and_print_the_problem(deployment: Deployment) -> None:
    code, out, _ = send(deployment.config, "--data", json.dumps(ORDER), "--token", "wrong")
    assert code == 1
    assert out.startswith("401 Unauthorized")
    code, out, _ = send(deployment.config, "--data", '{"order_id": "ord-1"}')
    assert code == 1
    status, problem = answer(out)
    assert status == "422 Unprocessable Entity"
    assert problem["status"] == 422


def test_unusable_input_exits_1(deployment: Deployment, tmp_path: Path) -> None:
    code, _, err = send(deployment.config, "--data", "{not json")
    assert code == 1
    assert "--data is not JSON" in err
    code, _, err = send(deployment.config, "--data", f"@{tmp_path / 'absent.json'}")
    assert code == 1
    assert "absent.json" in err


def test_an_unreachable_gateway_exits_2_naming_the_address(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = write_deployment(tmp_path, [], gateway={"server": {"port": port}})
    code, _, err = send(config, "--data", json.dumps(ORDER))
    assert code == 2
    assert f"http://127.0.0.1:{port}/events" in err


async def test_what_is_sent_is_the_event_a_sdk_decodes(tmp_path: Path) -> None:
    """--url at a recording server: binary and structured requests, decoded by the SDK."""
    subscriber = Subscriber()
    subscriber.plan("/events", 202)
    server = TestServer(subscriber.app, port=free_port())
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{server.port}"
        for mode in ("binary", "structured"):
            result = await asyncio.to_thread(
                run_cli, "send", "--url", url, "--mode", mode, "--type", "t.x", "--source", "/s",
                "--id", f"id-{mode}", "--data", json.dumps(ORDER), "--token", "tok",
            )
            assert result.returncode == 0, result.stderr
        binary, structured = subscriber.at("/events")
        assert binary.headers["Content-Type"] == "application/json"
        assert structured.headers["Content-Type"].startswith("application/cloudevents+json")
        for received, mode in ((binary, "binary"), (structured, "structured")):
            assert received.headers["Authorization"] == "Bearer tok"
            event = received_event(received)
            assert (event.get_id(), event.get_type(), event.get_source()) == (
                f"id-{mode}", "t.x", "/s")
            assert event.get_data() == ORDER
            assert event.get_time() is not None
    finally:
        await server.close()


def test_target_from_the_config() -> None:
    options = Options(type="t", source="/s")
    plain = Config(Path("c.yaml"), server=Server(host="0.0.0.0", port=9),
                   producers=(Producer(name="p", tokens=("first", "second")),))
    assert target(plain, options).url == "http://127.0.0.1:9/events"
    assert target(plain, options).token == "first"
    tls = Config(Path("c.yaml"), server=Server(host="::1", port=8443,
                                               tls=TLS(cert=Path("c"), key=Path("k"))))
    assert target(tls, options).url == "https://[::1]:8443/events"
    assert target(tls, options).token is None
    assert target(plain, Options("t", "/s", token="mine")).token == "mine"
    elsewhere = Options("t", "/s", url="http://gw.test:81")
    assert target(None, elsewhere).url == "http://gw.test:81/events"
    assert target(None, Options("t", "/s", url="http://gw.test/in")).url == "http://gw.test/in"


@pytest.mark.parametrize("command", [
    ["serve"], ["check"], ["route", "event.json"], ["send", "--type", "t", "--source", "/s"],
])
def test_a_missing_config_names_dash_c_and_the_variable(command: list[str], tmp_path: Path) -> None:
    result = run_cli(*command, cwd=tmp_path)
    assert result.returncode == 1
    assert "config/gateway.yaml: file not found" in result.stderr + result.stdout
    assert "-c FILE or $GATEWAY_CONFIG" in result.stderr + result.stdout
    named = run_cli(*command, "-c", "elsewhere.yaml", cwd=tmp_path)
    assert "elsewhere.yaml: file not found; name the config with -c" in named.stderr + named.stdout
