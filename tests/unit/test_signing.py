"""Standard Webhooks v1 signatures: the published vector, and the reference library as oracle."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.delivery.signing import decode_secret, sign
from tests.conftest import load_vector

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_known_answer_vector() -> None:
    vector = load_vector("standard-webhooks/signature_vectors.json")["sign_vector"]
    signature = sign(
        vector["secret"], vector["msg_id"], vector["timestamp"], vector["payload"].encode()
    )
    assert signature == vector["expected_signature"]


@settings(max_examples=50, deadline=None)
@given(
    body=st.text(max_size=2000),
    key=st.binary(min_size=24, max_size=64),
    msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,30}", fullmatch=True),
)
def test_reference_library_verifies_our_signatures(body: str, key: bytes, msg_id: str) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    timestamp = int(time.time())
    raw = body.encode()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, raw),
    }
    assert Webhook(secret).verify(raw, headers, json_parse=False) is None


def test_reference_library_rejects_a_changed_body() -> None:
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(SECRET, "msg_1", timestamp, b'{"a":1}'),
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a": 1}', headers, json_parse=False)


def test_signature_covers_id_and_timestamp() -> None:
    base = sign(SECRET, "msg_1", 1000, b"x")
    assert sign(SECRET, "msg_2", 1000, b"x") != base
    assert sign(SECRET, "msg_1", 1001, b"x") != base
    assert sign(SECRET, "msg_1", 1000, b"x") == base


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        (SECRET, bytes(range(32))),
        ("whsec_AAEC", b"\x00\x01\x02"),
        ("whsec_AAE", b"\x00\x01"),  # unpadded base64, as the reference library accepts
        ("whsec_AAE=", b"\x00\x01"),
    ],
)
def test_decode_secret(secret: str, key: bytes) -> None:
    assert decode_secret(secret) == key


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsk_AAEC",  # an Ed25519 key, not an HMAC secret
        "whsec_",  # empty
        "whsec_not*base64!",
        "whsec_A",  # not a whole byte
    ],
)
def test_decode_secret_rejects(secret: str) -> None:
    with pytest.raises(ValueError, match="signing secret"):
        decode_secret(secret)


@pytest.mark.parametrize("secret", ["s3cr3t-token-value", "whsec_s3cr3t-token-value!"])
def test_decode_secret_errors_do_not_show_the_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="signing secret") as info:
        decode_secret(secret)
    assert "s3cr3t" not in str(info.value)
