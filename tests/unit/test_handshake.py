"""The validation handshake (CONTRACT 5, `handshake: true`): what an OPTIONS answer means (CE
webhook spec 4) and the config keys (`delivery.handshake`, the gateway's `origin`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway.config import collect
from gateway.delivery.handshakes import Consent, verdict
from gateway.delivery.sender import Answer
from tests.schema_oracle import check_deployment

ORIGIN = "gw.example.com"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(200, {"webhook-allowed-origin": "*"}, None), Consent(None)),
        (Answer(204, {"webhook-allowed-origin": "GW.example.com"}, None), Consent(None)),
        (
            Answer(200, {"webhook-allowed-origin": ORIGIN, "webhook-allowed-rate": "120"}, None),
            Consent(2.0),
        ),
        (Answer(200, {"webhook-allowed-origin": "*", "webhook-allowed-rate": "*"}, None),
         Consent(None)),
    ],
)
def test_consent(answer: Answer, expected: Consent) -> None:
    assert verdict(answer, ORIGIN) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        # A status alone is not consent (CE webhook 4).
        (Answer(200, {}, None), "without WebHook-Allowed-Origin"),
        (Answer(405, {}, None), "HTTP 405"),
        (Answer(503, {"webhook-allowed-origin": "*"}, None), "HTTP 503"),
        (Answer(302, {}, None), "HTTP 302"),
        (Answer(200, {"webhook-allowed-origin": "other.example"}, None), "'other.example'"),
        (Answer(200, {"webhook-allowed-origin": "*", "webhook-allowed-rate": "0"}, None),
         "WebHook-Allowed-Rate '0'"),
        (Answer(200, {"webhook-allowed-origin": "*", "webhook-allowed-rate": "1.5"}, None),
         "WebHook-Allowed-Rate '1.5'"),
        (Answer(None, {}, "timeout"), "timeout"),
        (Answer(None, {}, "egress refused: 169.254.169.254 is denied"), "egress refused"),
    ],
)
def test_refusal(answer: Answer, reason: str) -> None:
    found = verdict(answer, ORIGIN)
    assert isinstance(found, str)
    assert reason in found


def write(root: Path, gateway: str, subscriptions: str) -> Path:
    (root / "config" / "subscriptions").mkdir(parents=True)
    (root / "schemas").mkdir()
    (root / "config" / "gateway.yaml").write_text(gateway)
    (root / "config" / "subscriptions" / "s.yaml").write_text(subscriptions)
    return root / "config" / "gateway.yaml"


def test_keys_load(tmp_path: Path) -> None:
    subs = (
        "subscriptions:\n"
        "  - name: a\n    sink: https://hooks.example.com/a\n    delivery: {handshake: true}\n"
        "  - name: b\n    sink: nats://127.0.0.1:4222/b\n"
    )
    path = write(tmp_path, "origin: events.example.com\n", subs)
    check_deployment(path, {})
    config, problems = collect(path, {})
    assert config is not None, problems
    assert config.origin == "events.example.com"
    assert [s.delivery.handshake for s in config.subscriptions] == [True, False]


def test_origin_defaults_to_the_host_name(tmp_path: Path) -> None:
    config, problems = collect(write(tmp_path, "", "subscriptions: []\n"), {})
    assert config is not None, problems
    assert config.origin in (socket.getfqdn(), "localhost")


@pytest.mark.parametrize(
    ("gateway", "subscription", "expected"),
    [
        ("origin: 'not a name'\n", "", "gateway.yaml:1: origin: must be a DNS name"),
        ("origin: 8080\n", "", "gateway.yaml:1: origin: must be a string"),
        ("", "    delivery: {handshake: yes please}\n", "s.yaml:4: subscriptions[0].delivery."
         "handshake: must be true or false"),
        ("", "    sink: nats://127.0.0.1:4222/a\n    delivery:\n      handshake: true\n",
         "s.yaml:5: subscriptions[0].delivery.handshake: handshake: true needs an http(s) sink"),
        # Set by the defaults: reported at the broker sink that cannot take it.
        ("defaults: {delivery: {handshake: true}}\n", "    sink: mqtt://127.0.0.1:1883/a\n",
         "s.yaml:3: subscriptions[0].sink: handshake: true needs an http(s) sink"),
    ],
)
def test_bad_keys(tmp_path: Path, gateway: str, subscription: str, expected: str) -> None:
    sink = "" if "sink:" in subscription else "    sink: https://hooks.example.com/a\n"
    text = f"subscriptions:\n  - name: a\n{sink}{subscription}"
    _, problems = collect(write(tmp_path, gateway, text), {})
    shown = [str(p) for p in problems]
    assert len(shown) == 1, shown
    assert expected in shown[0], shown
