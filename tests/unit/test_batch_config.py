"""`delivery.mode: batch` and `delivery.batch` (CONTRACT 5): defaults, sizes, and the problems
reported with file, line and key path."""

from __future__ import annotations

import pytest

from gateway.config import load
from gateway.config.model import Batch, Mode
from gateway.config.sizes import parse_size
from tests.unit.test_config import Deployer, deploy

__all__ = ["deploy"]

SUB = "subscriptions:\n  - name: a\n    sink: {sink}\n    delivery:\n{delivery}"


def sub(delivery: str, sink: str = "https://x.test/hook") -> dict[str, str]:
    indented = "".join(f"      {line}\n" for line in delivery.splitlines())
    text = SUB.format(sink=sink, delivery=indented)
    return {"config/gateway.yaml": "", "config/subscriptions/s.yaml": text}


def test_batch_mode_with_the_contract_defaults(deploy: Deployer) -> None:
    config = load(deploy(sub("mode: batch")), {})
    delivery = config.subscriptions[0].delivery
    assert delivery.mode is Mode.BATCH
    assert delivery.batch == Batch(100, 1024 * 1024, 0.05)


def test_batch_settings_and_sizes(deploy: Deployer) -> None:
    written = "mode: batch\nbatch: {max_events: 7, max_bytes: 512KiB, linger: 1s}"
    config = load(deploy(sub(written)), {})
    assert config.subscriptions[0].delivery.batch == Batch(7, 512 * 1024, 1.0)


def test_batch_mode_takes_ordering(deploy: Deployer) -> None:
    config = load(deploy(sub("mode: batch\nordering: {key: subject}")), {})
    assert config.subscriptions[0].delivery.ordering == "subject"


def test_batch_defaults_merge_key_by_key(deploy: Deployer) -> None:
    files = sub("mode: batch\nbatch: {max_events: 5}")
    defaults = "defaults:\n  delivery:\n    batch: {max_bytes: 2000, linger: 0s}\n"
    files["config/gateway.yaml"] = defaults
    config = load(deploy(files), {})
    assert config.subscriptions[0].delivery.batch == Batch(5, 2000, 0.0)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1000", 1000), ("1MiB", 1 << 20), ("64kB", 64_000), ("2 KiB", 2048), ("3b", 3)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("delivery", "sink", "expected"),
    [
        ("batch: {max_events: 5}", "https://x.test/",
         ":5: subscriptions[0].delivery.batch: batch settings need 'mode: batch'"),
        ("mode: batch", "nats://127.0.0.1:4222/orders",
         ":5: subscriptions[0].delivery.mode: mode: batch needs an http(s) sink; the nats:// "
         "binding has no batched mode"),
        ("mode: batch\nbatch: {max_events: 0}", "https://x.test/",
         ":6: subscriptions[0].delivery.batch.max_events: must be >= 1"),
        ("mode: batch\nbatch: {max_bytes: lots}", "https://x.test/",
         ":6: subscriptions[0].delivery.batch.max_bytes: must be a size like 1MiB"),
        ("mode: batch\nbatch: {max_bytes: 1GiB}", "https://x.test/",
         ":6: subscriptions[0].delivery.batch.max_bytes: must be <= 67108864"),
        ("mode: batch\nbatch: {linger: 2m}", "https://x.test/",
         ":6: subscriptions[0].delivery.batch.linger: must be at most 60s"),
        ("mode: batch\nbatch: {max_event: 3}", "https://x.test/",
         ":6: subscriptions[0].delivery.batch.max_event: unknown key 'max_event'"),
    ],
)  # fmt: skip
def test_batch_problems(deploy: Deployer, delivery: str, sink: str, expected: str) -> None:
    problems = deploy.problems(sub(delivery, sink))
    assert len(problems) == 1, problems
    assert problems[0].startswith("config/subscriptions/s.yaml" + expected), problems
