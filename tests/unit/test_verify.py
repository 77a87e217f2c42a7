"""Verification of source requests: every kind, secret rotation, replay tolerance; the
signatures here are computed by the tests themselves from each scheme's definition."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from gateway.config.model import Verify
from gateway.errors import Unauthorized
from gateway.ingest.sources.verify import check, signed_bytes
from gateway.sources.kinds import is_standard_webhooks_secret
from gateway.sources.templates import SIGNATURE_ROOTS, compile_template

BODY = b'{"event":"created","order":{"id":"o-1"}}'
NOW = 1_700_000_000.0
SECRET = "s3cret"
OLD = "old-secret"


def mac(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def hmac_spec(**kw: Any) -> Verify:
    signed = kw.pop("signed", None)
    return Verify(
        kind="hmac",
        header=kw.pop("header", "x-signature"),
        secrets=kw.pop("secrets", (SECRET,)),
        signed=None if signed is None else compile_template(signed, SIGNATURE_ROOTS),
        **kw,
    )


def run(spec: Verify, headers: dict[str, str], body: bytes = BODY, **kw: Any) -> None:
    check(spec, body, headers, kw.get("query", {}), kw.get("now", NOW))


# -- hmac ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "header"),
    [
        (hmac_spec(), mac(SECRET, BODY).hex()),
        (hmac_spec(), mac(SECRET, BODY).hex().upper()),
        (hmac_spec(algorithm="sha1"), mac(SECRET, BODY, "sha1").hex()),
        (hmac_spec(algorithm="sha512"), mac(SECRET, BODY, "sha512").hex()),
        (hmac_spec(encoding="base64"), base64.b64encode(mac(SECRET, BODY)).decode()),
        (hmac_spec(prefix="sha256="), "sha256=" + mac(SECRET, BODY).hex()),
        (hmac_spec(secrets=(OLD, SECRET)), mac(SECRET, BODY).hex()),  # rotation
        (hmac_spec(secrets=(SECRET, OLD)), mac(OLD, BODY).hex()),
    ],
)
def test_hmac_signatures_that_verify(spec: Verify, header: str) -> None:
    run(spec, {"x-signature": header})


@pytest.mark.parametrize(
    ("spec", "headers", "reason"),
    [
        (hmac_spec(), {}, "header x-signature is missing"),
        (hmac_spec(), {"x-signature": ""}, "header x-signature is missing"),
        (hmac_spec(), {"x-signature": mac("wrong", BODY).hex()}, "does not match"),
        (hmac_spec(), {"x-signature": mac(SECRET, BODY + b" ").hex()}, "does not match"),
        (hmac_spec(), {"x-signature": mac(SECRET, BODY).hex()[:-2]}, "does not match"),
        (hmac_spec(), {"x-signature": "zz" + mac(SECRET, BODY).hex()}, "not valid hex"),
        (hmac_spec(encoding="base64"), {"x-signature": "***"}, "not valid base64"),
        (hmac_spec(prefix="sha256="), {"x-signature": mac(SECRET, BODY).hex()}, "prefix"),
        (hmac_spec(algorithm="sha1"), {"x-signature": mac(SECRET, BODY).hex()}, "does not match"),
    ],
)
def test_hmac_signatures_that_are_refused(
    spec: Verify, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        run(spec, headers)
    assert reason in caught.value.detail
    assert SECRET not in caught.value.detail


def _timestamped(at: float, sign_at: float | None = None) -> dict[str, str]:
    stamp = str(int(at))
    signed = f"{int(sign_at if sign_at is not None else at)}.".encode() + BODY
    return {"x-signature": mac(SECRET, signed).hex(), "x-timestamp": stamp}


TIMESTAMPED = hmac_spec(signed="{timestamp}.{body}", timestamp_header="x-timestamp", tolerance=300)


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        (_timestamped(NOW), None),
        (_timestamped(NOW - 300), None),
        (_timestamped(NOW + 300), None),
        (_timestamped(NOW - 301), "possible replay"),
        (_timestamped(NOW + 301), "possible replay"),
        ({**_timestamped(NOW - 3600), "x-timestamp": str(int(NOW))}, "does not match"),
        ({"x-signature": _timestamped(NOW)["x-signature"]}, "header x-timestamp is missing"),
        ({**_timestamped(NOW), "x-timestamp": "soon"}, "not a Unix time"),
    ],
)
def test_a_signed_timestamp_refuses_replays(headers: dict[str, str], refused: str | None) -> None:
    if refused is None:
        run(TIMESTAMPED, headers)
        return
    with pytest.raises(Unauthorized) as caught:
        run(TIMESTAMPED, headers)
    assert refused in caught.value.detail


def test_signed_templates_cover_headers_and_the_raw_body() -> None:
    template = compile_template("{headers.x-id}.{timestamp}.{body}", SIGNATURE_ROOTS)
    assert signed_bytes(template, b"\xff\x00", {"x-id": "m1"}, "17") == b"m1.17.\xff\x00"
    assert signed_bytes(None, b"raw", {}, "") == b"raw"
    spec = hmac_spec(signed="{headers.x-id}:{body}")
    run(spec, {"x-id": "m1", "x-signature": mac(SECRET, b"m1:" + BODY).hex()})


# -- token, bearer, basic --------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


TOKEN = Verify(kind="token", header="x-gitlab-token", secrets=(SECRET, OLD))
BEARER = Verify(kind="bearer", secrets=(SECRET,))
BASIC = Verify(kind="basic", secrets=(SECRET,), username="hook")
ANY_USER = Verify(kind="basic", secrets=(SECRET,))


@pytest.mark.parametrize(
    ("spec", "headers", "query", "ok"),
    [
        (TOKEN, {"x-gitlab-token": SECRET}, {}, True),
        (TOKEN, {"x-gitlab-token": OLD}, {}, True),
        (TOKEN, {"x-gitlab-token": SECRET + "x"}, {}, False),
        (TOKEN, {}, {}, False),
        (BEARER, {"authorization": f"Bearer {SECRET}"}, {}, True),
        (BEARER, {"authorization": f"bearer  {SECRET} "}, {}, True),
        (BEARER, {}, {"access_token": SECRET}, True),  # CE webhook spec 3
        (BEARER, {"authorization": "Bearer nope"}, {"access_token": SECRET}, False),
        (BEARER, {"authorization": f"Basic {SECRET}"}, {}, False),
        (BEARER, {}, {}, False),
        (BASIC, {"authorization": _basic("hook", SECRET)}, {}, True),
        (BASIC, {"authorization": _basic("other", SECRET)}, {}, False),
        (BASIC, {"authorization": _basic("hook", "nope")}, {}, False),
        (BASIC, {"authorization": "Basic !!!"}, {}, False),
        (BASIC, {"authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}, {},
         False),
        (ANY_USER, {"authorization": _basic("anyone", SECRET)}, {}, True),
        (ANY_USER, {"authorization": _basic("anyone", "x:" + SECRET)}, {}, False),
        (BASIC, {}, {}, False),
    ],
)  # fmt: skip
def test_tokens_and_credentials(
    spec: Verify, headers: dict[str, str], query: dict[str, str], ok: bool
) -> None:
    if ok:
        run(spec, headers, query=query)
        return
    with pytest.raises(Unauthorized) as caught:
        run(spec, headers, query=query)
    assert SECRET not in caught.value.detail
    if spec.kind in ("bearer", "basic"):
        assert "WWW-Authenticate" in caught.value.headers


# -- stripe ----------------------------------------------------------------------------------

STRIPE_SECRET = "whsec_test_stripe"
STRIPE = Verify(kind="stripe", secrets=(STRIPE_SECRET,), tolerance=300)


def stripe_header(at: float, secret: str = STRIPE_SECRET, body: bytes = BODY) -> str:
    # Stripe: signed_payload = "<t>.<raw body>"; v1 = hex(HMAC-SHA256(endpoint secret, it)).
    t = str(int(at))
    return f"t={t},v1={mac(secret, t.encode() + b'.' + body).hex()}"


@pytest.mark.parametrize(
    ("header", "refused"),
    [
        (stripe_header(NOW), None),
        (stripe_header(NOW) + ",v0=" + "00" * 32, None),
        (f"t={int(NOW)},v1={'ab' * 32},v1={stripe_header(NOW).split('v1=')[1]}", None),
        (stripe_header(NOW, "other"), "no v1 signature"),
        (stripe_header(NOW - 301), "possible replay"),
        (f"t={int(NOW)}", "needs one t="),
        (f"v1={'ab' * 32}", "needs one t="),
        (f"t={int(NOW)},v1=xyz", "no v1 signature"),
    ],
)
def test_stripe_signatures(header: str, refused: str | None) -> None:
    headers = {"stripe-signature": header}
    if refused is None:
        run(STRIPE, headers)
        return
    with pytest.raises(Unauthorized) as caught:
        run(STRIPE, headers)
    assert refused in caught.value.detail


# -- standard webhooks -----------------------------------------------------------------------

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()


def standard_headers(secret: str, at: datetime, body: bytes = BODY) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id="msg_1", timestamp=at, data=body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def test_standard_webhooks_signatures_verify_with_any_configured_secret() -> None:
    now = datetime.now(UTC)
    spec = Verify(kind="standard-webhooks", secrets=(OTHER_WHSEC, WHSEC))
    headers = standard_headers(WHSEC, now)
    check(spec, BODY, headers, {}, now.timestamp())
    # Several signatures in one header: any one that matches verifies.
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    check(spec, BODY, headers, {}, now.timestamp())


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"webhook-signature": "v1,bm90IGl0"}, "no signature"),
        ({"webhook-signature": "garbage"}, "no signature"),
        ({"webhook-signature": "v1,!!!"}, "no signature"),
        ({"webhook-id": "msg_2"}, "no signature"),
        ({"webhook-id": ""}, "webhook-id is missing"),
        ({"webhook-timestamp": "yesterday"}, "not a Unix time"),
    ],
)
def test_standard_webhooks_refusals(change: dict[str, str], refused: str) -> None:
    now = datetime.now(UTC)
    spec = Verify(kind="standard-webhooks", secrets=(WHSEC,))
    headers = {**standard_headers(WHSEC, now), **change}
    with pytest.raises(Unauthorized) as caught:
        check(spec, BODY, headers, {}, now.timestamp())
    assert refused in caught.value.detail


def test_standard_webhooks_old_timestamps_are_replays() -> None:
    now = datetime.now(UTC)
    spec = Verify(kind="standard-webhooks", secrets=(WHSEC,), tolerance=300)
    headers = standard_headers(WHSEC, now)
    with pytest.raises(Unauthorized, match="possible replay"):
        check(spec, BODY, headers, {}, now.timestamp() + 301)


def test_standard_webhooks_known_answer_vector() -> None:
    # Standard Webhooks' own test vector: v1 = base64(HMAC-SHA256(key, "id.ts.body")).
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    expected = base64.b64encode(mac_bytes(key, b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.'
                                               b'{"test": 2432232314}')).decode()  # fmt: skip
    assert expected == "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    at = datetime.fromtimestamp(1614265330, UTC)
    assert Webhook(WHSEC).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", at, '{"test": 2432232314}') == (
        "v1," + expected
    )


def mac_bytes(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


@pytest.mark.parametrize(
    ("secret", "ok"),
    [(WHSEC, True), (OTHER_WHSEC, True), ("whsec_", False), ("MfKQ9r8GKYqr", False),
     ("whsec_***", False)],
)  # fmt: skip
def test_standard_webhooks_secret_shape(secret: str, ok: bool) -> None:
    assert is_standard_webhooks_secret(secret) is ok


def test_none_accepts_anything() -> None:
    run(Verify(kind="none"), {})
