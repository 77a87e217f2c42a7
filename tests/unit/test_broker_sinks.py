"""Broker sink URLs: their shapes, how `gateway check` reports them, a missing client library."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway import redact, sinkurl
from gateway.delivery.brokers.base import describe
from tests.unit.test_config import Deployer, deploy  # noqa: F401 - the fixture

GOOD = [
    ("nats://127.0.0.1/orders.created", ("nats", 4222, "orders.created", "", 1)),
    ("nats://u:p@127.0.0.1:4223/a.b", ("nats", 4223, "a.b", "", 1)),
    ("amqp://guest:guest@127.0.0.1/orders?routing_key=new", ("amqp", 5672, "orders", "new", 1)),
    ("amqp://127.0.0.1/?routing_key=queue", ("amqp", 5672, "", "queue", 1)),
    ("mqtt://127.0.0.1/shop/orders", ("mqtt", 1883, "shop/orders", "", 1)),
    ("mqtt://127.0.0.1:1884/t?qos=0", ("mqtt", 1884, "t", "", 0)),
    ("mqtt://127.0.0.1/t?qos=2", ("mqtt", 1883, "t", "", 2)),
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_broker_urls(url: str, expected: tuple[str, int, str, str, int]) -> None:
    found = sinkurl.broker(url)
    assert (found.scheme, found.port, found.target, found.routing_key, found.qos) == expected
    assert sinkurl.parse(url).scheme == expected[0]


BAD = [
    ("nats://127.0.0.1:4222", "needs a subject"),
    ("nats://127.0.0.1/orders.*", "must not contain wildcards"),
    ("nats://127.0.0.1/orders..x", "dot-separated non-empty tokens"),
    ("nats://127.0.0.1/a?x=1", "unknown query parameter 'x'"),
    ("amqp://127.0.0.1/", "needs an exchange or a routing_key"),
    ("amqp://127.0.0.1/a/b", "single path segment"),
    ("mqtt://127.0.0.1/", "needs a topic"),
    ("mqtt://127.0.0.1/a/#", "must not contain '#'"),
    ("mqtt://127.0.0.1/a/+/b", "must not contain wildcards"),
    ("mqtt://127.0.0.1/a?qos=3", "qos must be 0, 1 or 2"),
    ("mqtt://127.0.0.1:0/a", "invalid port"),
    ("kafka://127.0.0.1/a", "absolute http(s), nats, amqp or mqtt URL"),
]


@pytest.mark.parametrize(("url", "message"), BAD)
def test_bad_broker_urls_are_config_errors(deploy: Deployer, url: str, message: str) -> None:  # noqa: F811
    text = f'subscriptions:\n  - name: a\n    sink: "{url}"\n'
    problems = deploy.problems({"config/gateway.yaml": "", "config/subscriptions/s.yaml": text})
    assert len(problems) == 1, problems
    assert problems[0].startswith("config/subscriptions/s.yaml:3: subscriptions[0].sink")
    assert message in problems[0]


def test_broker_sinks_load_with_credentials_and_auth_apart(deploy: Deployer) -> None:  # noqa: F811
    text = textwrap.dedent("""\
        subscriptions:
          - name: a
            sink: amqp://guest:guest@127.0.0.1:5672/orders?routing_key=new
            delivery: {dead_letter: "nats://127.0.0.1:4222/dead.orders"}
          - name: b
            sink: mqtt://127.0.0.1:1883/shop/orders?qos=1
        """)
    assert deploy.problems({"config/gateway.yaml": "", "config/subscriptions/s.yaml": text}) == []


def test_errors_never_show_the_credentials() -> None:
    broker = sinkurl.broker("amqp://alice:s3cret@127.0.0.1/x?routing_key=k")
    shown = describe(RuntimeError("login alice:s3cret refused"), broker)
    assert "s3cret" not in shown
    assert "alice" not in shown
    assert redact.MASK in shown


@pytest.mark.parametrize(("scheme", "module", "extra"),
                         [("nats", "nats", "nats"), ("amqp", "aio_pika", "amqp"),
                          ("mqtt", "aiomqtt", "mqtt")])
def test_a_missing_client_library_names_the_extra(
    tmp_path: Path, scheme: str, module: str, extra: str
) -> None:
    # A fresh interpreter where importing the client library fails, as when it is not installed.
    (tmp_path / "config" / "subscriptions").mkdir(parents=True)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "config" / "gateway.yaml").write_text("")
    (tmp_path / "config" / "subscriptions" / "s.yaml").write_text(
        f"subscriptions:\n  - name: a\n    sink: {scheme}://127.0.0.1/x?routing_key=k\n"
        if scheme == "amqp" else f"subscriptions:\n  - name: a\n    sink: {scheme}://127.0.0.1/x\n"
    )
    script = textwrap.dedent(f"""\
        import importlib, sys
        real = importlib.import_module
        def refuse(name, package=None):
            if name == {module!r} or name.startswith({module!r} + "."):
                raise ModuleNotFoundError(f"No module named {{name!r}}")
            return real(name, package)
        importlib.import_module = refuse
        from gateway.cli import main
        sys.exit(main(["check", "--config", "config/gateway.yaml"]))
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"pip install 'cloudevents-gateway[{extra}]'" in output
    assert "subscriptions[0].sink" in output


def test_the_readme_examples_load(deploy: Deployer) -> None:  # noqa: F811
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Sinks beyond HTTP")
    section = readme[start : readme.index("\n## ", start + 1)]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 3
    for block in blocks:
        files = {"config/gateway.yaml": "", "config/subscriptions/s.yaml": block}
        assert deploy.problems(files) == []
