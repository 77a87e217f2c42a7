"""The README's quickstart, walked as written: its commands are read from the README's code blocks
(so that the README and reality cannot drift apart) and run as real processes against a copy of
the example deployment. Only the ports differ: the example's fixed ports become free ones
through the variables the example config already reads (GATEWAY_PORT, BILLING_SINK, ...) and
`--port` options added to `gateway sink`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.cli import parser
from gateway.devtools.sink import DEFAULT_PORTS
from tests.integration.process import ROOT, free_port

DEADLINE = 30.0  # generous: a bound for waiting, never an assertion about speed
# Commands the test does not run: installing, and the test suite's own command.
SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install", "ruff check", "mypy", "pytest")
# `${NAME:-http://127.0.0.1:PORT/...}` in the example config: a sink URL a variable overrides.
SINK_URL = re.compile(r"\$\{([A-Z0-9_]+):-(http://127\.0\.0\.1:(\d+)(/[^}]*))\}")
# What the README says the sinks show for the example order, by example port.
SHOWN = {9001: ("binary", "verified"), 9002: ("structured", "not signed"),
         9003: ("binary", "not signed")}


def quickstart_commands() -> list[str]:
    """Every command of the quickstart's `sh` blocks (the README's top, before its contents)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    top = readme.split("\n## Contents", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", top, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


class Command:
    """A gateway command run from `root`; its stdout is read line by line through a pipe."""

    def __init__(self, argv: list[str], root: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *argv], cwd=root, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, name="pipe reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if done():
                return
            assert self.proc.poll() is None, f"exited while waiting for {what}:\n{self.output}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output}")

    def blocks(self, port: int, event_id: str) -> list[str]:
        """The requests printed for `event_id` that arrived on `port`."""
        found = [f"--- {b}" for b in self.output.split("--- ")[1:]]
        return [b for b in found if f" 127.0.0.1:{port}/" in b.splitlines()[0] and event_id in b]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, dict[str, str], dict[int, int]]:
    """A copy of the example (config/, schemas/, examples/), the environment that moves it to
    free ports, and the map from each example port to its free port."""
    for folder in ("config", "schemas", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    ports: dict[int, int] = {}
    # Without PYTHONUNBUFFERED: the sink must flush each request itself to show through a pipe.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATEWAY_") and k != "PYTHONUNBUFFERED"}
    env["GATEWAY_PORT"] = str(free_port())
    env["GATEWAY_ADMIN_PORT"] = str(free_port())
    for path in sorted((tmp_path / "config").rglob("*.yaml")):
        for name, _, port, rest in SINK_URL.findall(path.read_text(encoding="utf-8")):
            mapped = ports.setdefault(int(port), free_port())
            env[name] = f"http://127.0.0.1:{mapped}{rest}"
    return tmp_path, env, ports


def sink_argv(command: str, ports: dict[int, int]) -> tuple[list[str], list[int]]:
    """The README's `gateway sink` arguments with its ports moved; the example ports it uses."""
    argv = shlex.split(command)[1:]
    chosen = parser().parse_args(argv).port or list(DEFAULT_PORTS)
    kept: list[str] = []
    skipping = False
    for arg in argv:
        if arg == "--port":
            skipping = True
        elif skipping and arg.isdigit():
            continue
        else:
            skipping = False
            kept.append(arg)
    return [*kept, "--port", *(str(ports[p]) for p in chosen)], chosen


def run(command: str, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *shlex.split(command)[1:]], cwd=root, env=env,
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )


def sent_id(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    status, _, body = result.stdout.partition("\n")
    assert status == "202 Accepted"
    answer = json.loads(body)
    assert answer["duplicates"] == []
    [event_id] = answer["ids"]
    return str(event_id)


def wait_ready(url: str, serve: Command) -> None:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    serve.until(ready, f"{url} to answer 200")


@pytest.fixture
def started() -> Iterator[list[Command]]:
    commands: list[Command] = []
    yield commands
    for command in commands:
        command.kill()


def test_the_readme_quickstart_works_as_written(
    deployment: tuple[Path, dict[str, str], dict[int, int]], started: list[Command]
) -> None:
    root, env, ports = deployment
    commands = quickstart_commands()
    gateway = [c for c in commands if c.startswith("gateway ")]
    assert all(c.startswith(SETUP) for c in commands if c not in gateway), commands
    [serve_cmd] = [c for c in gateway if c.split()[1] == "serve"]
    [send_cmd] = [c for c in gateway if c.split()[1] == "send"]
    sink_cmd, retry_sink_cmd = [c for c in gateway if c.split()[1] == "sink"]
    routes = [c for c in gateway if c.split()[1] == "route"]
    assert len(gateway) == 4 + len(routes), gateway  # nothing the test does not run

    serve = Command(shlex.split(serve_cmd)[1:], root, env)
    started.append(serve)
    wait_ready(f"http://127.0.0.1:{env['GATEWAY_PORT']}/readyz", serve)

    argv, example_ports = sink_argv(sink_cmd, ports)
    assert sorted(example_ports) == sorted(SHOWN)
    sink = Command(argv, root, env)
    started.append(sink)
    sink.until(lambda: "listening" in sink.output, "the sink to listen")

    event_id = sent_id(run(send_cmd, root, env))
    for port, (mode, signature) in SHOWN.items():
        sink.until(lambda p=port: bool(sink.blocks(ports[p], event_id)), f"the event at {port}")
        [block] = sink.blocks(ports[port], event_id)
        head = block.splitlines()[0]
        assert f"  {mode}  " in head, block
        assert f"signature: {signature}" in head, block
        assert "-> 200" in head
        assert '"order_id": "ord_A1B2C3D4"' in block  # the data, pretty-printed
    assert sink.stop() == 0

    # Watching retries: the sink answers 503, so billing's attempts repeat with one webhook-id.
    argv, _ = sink_argv(retry_sink_cmd, ports)
    failing = Command(argv, root, env)
    started.append(failing)
    failing.until(lambda: "listening" in failing.output, "the 503 sink to listen")
    second = sent_id(run(send_cmd, root, env))
    assert second != event_id
    billing = ports[9001]
    failing.until(lambda: len(failing.blocks(billing, second)) >= 2, "a retry to billing")
    attempts = failing.blocks(billing, second)[:2]
    assert all("-> 503" in a.splitlines()[0] for a in attempts)
    webhook_ids = {line for a in attempts for line in a.splitlines() if "webhook-id:" in line}
    assert len(webhook_ids) == 1, attempts
    assert failing.stop() == 0

    for route in routes:
        result = run(route, root, env)
        assert result.returncode == 0, result.stdout + result.stderr

    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(timeout=DEADLINE) == 0, serve.output
