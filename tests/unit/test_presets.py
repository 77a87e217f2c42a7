"""Presets against realistic provider requests, signed by the tests from each provider's
documented algorithm (and the providers' own published examples where they give one)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import pytest
from standardwebhooks import Webhook

from gateway.config.loader import load
from gateway.config.model import Config, Source
from gateway.errors import NotFound, Unauthorized
from gateway.event import DataKind, Event
from gateway.ingest.sources.dryrun import preview
from gateway.ingest.sources.mapping import TemplateUnresolved
from gateway.ingest.sources.verify import check
from gateway.sources.presets import PRESETS, handshake

GITHUB_SECRET = "It's a Secret to Everybody"
GITLAB_TOKEN = "glpat-hook-token"
STRIPE_SECRET = "whsec_stripe_endpoint_secret"
SHOPIFY_SECRET = "shpss_client_secret"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

SOURCES = f"""\
sources:
  - {{name: github, preset: github, verify: {{secret: "{GITHUB_SECRET}"}}}}
  - {{name: gitlab, preset: gitlab, verify: {{secret: {GITLAB_TOKEN}}}}}
  - {{name: stripe, preset: stripe, verify: {{secret: [old_secret, {STRIPE_SECRET}]}}}}
  - {{name: shopify, preset: shopify, verify: {{secret: {SHOPIFY_SECRET}}}}}
  - {{name: slack, preset: slack, verify: {{secret: {SLACK_SECRET}}}}}
  - {{name: hooks, preset: standard-webhooks, verify: {{secret: {WHSEC}}}}}
  - name: gh-custom
    preset: github
    verify: {{secret: "{GITHUB_SECRET}"}}
    event:
      type: "org.example.github.{{headers.x-github-event}}"
      subject: null
      team: "{{query.team}}"
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("deployment")
    (root / "config" / "sources").mkdir(parents=True)
    (root / "schemas").mkdir()
    (root / "config" / "gateway.yaml").write_text("subscriptions: []\n")
    (root / "config" / "sources" / "providers.yaml").write_text(SOURCES)
    return load(root / "config" / "gateway.yaml", env={})


def _source(config: Config, name: str) -> Source:
    return next(s for s in config.sources if s.name == name)


def receive(
    config: Config,
    name: str,
    body: bytes,
    headers: dict[str, str],
    now: float,
    query: dict[str, str] | None = None,
) -> Event:
    """What the endpoint does: verify on the raw bytes, then map."""
    lower = {k.lower(): v for k, v in headers.items()}
    check(_source(config, name).verify, body, lower, query or {}, now)
    return preview(config, name, body, headers, query)


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_every_preset_loads_and_declares_type_source_and_id(config: Config) -> None:
    assert {s.preset for s in config.sources} == set(PRESETS)
    for source in config.sources:
        attributes = dict(source.event)
        assert {"type", "source", "id"} <= set(attributes), source.name


# -- GitHub ----------------------------------------------------------------------------------

NOW = 1_700_000_000.0
REPO = {"full_name": "octo/hello", "html_url": "https://github.com/octo/hello"}
SENDER = {"login": "octocat", "html_url": "https://github.com/octocat"}


def github_headers(
    event: str, body: bytes, content_type: str = "application/json"
) -> dict[str, str]:
    # GitHub: X-Hub-Signature-256 = "sha256=" + hex(HMAC-SHA256(webhook secret, raw body)).
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature-256": "sha256=" + hex_hmac(GITHUB_SECRET, body),
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def test_github_documented_example_signature(config: Config) -> None:
    # GitHub's docs: secret "It's a Secret to Everybody", payload "Hello, World!".
    documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"x-hub-signature-256": documented}
    check(_source(config, "github").verify, b"Hello, World!", headers, {}, NOW)
    with pytest.raises(Unauthorized):
        check(_source(config, "github").verify, b"Hello, World?", headers, {}, NOW)


@pytest.mark.parametrize(
    ("event", "payload", "type_", "source", "subject"),
    [
        ("pull_request", {"action": "opened", "number": 2, "pull_request": {"number": 2},
                          "repository": REPO, "sender": SENDER},
         "com.github.pull_request.opened", "https://github.com/octo/hello", "2"),
        ("issues", {"action": "closed", "issue": {"number": 17}, "repository": REPO,
                    "sender": SENDER},
         "com.github.issues.closed", "https://github.com/octo/hello", "17"),
        ("push", {"ref": "refs/heads/main", "repository": REPO, "sender": SENDER},
         "com.github.push", "https://github.com/octo/hello", None),
        ("organization", {"action": "member_added", "organization": {"login": "octo-org"},
                          "sender": SENDER},
         "com.github.organization.member_added", "https://github.com/octo-org", None),
        ("sponsorship", {"action": "created", "sender": SENDER},
         "com.github.sponsorship.created", "https://github.com/octocat", None),
    ],
)  # fmt: skip
def test_github_events(
    config: Config,
    event: str,
    payload: dict[str, Any],
    type_: str,
    source: str,
    subject: str | None,
) -> None:
    body = json.dumps(payload, indent=2).encode()
    got = receive(config, "github", body, github_headers(event, body), NOW)
    assert got.id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert (got.type, got.source, got.attributes.get("subject")) == (type_, source, subject)
    assert (got.data, got.kind, got.datacontenttype) == (body, DataKind.JSON, "application/json")


def test_github_form_bodies_carry_the_payload_as_json(config: Config) -> None:
    payload = {"action": "opened", "issue": {"number": 5}, "repository": REPO}
    body = b"payload=" + quote_plus(json.dumps(payload)).encode()
    headers = github_headers("issues", body, "application/x-www-form-urlencoded")
    got = receive(config, "github", body, headers, NOW)
    assert (got.type, got.attributes["subject"]) == ("com.github.issues.opened", "5")
    assert got.datacontenttype == "application/json"
    assert json.loads(got.data or b"") == payload


def test_github_wrong_secret_is_refused(config: Config) -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    headers = github_headers("ping", body)
    headers["X-Hub-Signature-256"] = "sha256=" + hex_hmac("guess", body)
    with pytest.raises(Unauthorized):
        receive(config, "github", body, headers, NOW)


def test_a_preset_template_can_be_overridden_or_dropped(config: Config) -> None:
    body = json.dumps({"action": "opened", "issue": {"number": 5}, "repository": REPO}).encode()
    got = receive(config, "gh-custom", body, github_headers("issues", body), NOW, {"team": "web"})
    assert got.type == "org.example.github.issues"
    assert got.source == "https://github.com/octo/hello"  # kept from the preset
    assert "subject" not in got.attributes
    assert got.attributes["team"] == "web"


# -- GitLab ----------------------------------------------------------------------------------


def gitlab_headers(event: str, **extra: str) -> dict[str, str]:
    # GitLab: the secret token is sent as is in X-Gitlab-Token.
    return {
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": GITLAB_TOKEN,
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
        "Content-Type": "application/json",
        **extra,
    }


def test_gitlab_merge_request_with_an_idempotency_key(config: Config) -> None:
    payload = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "project": {"web_url": "https://gitlab.example.com/group/app"},
        "object_attributes": {"iid": 1, "action": "open", "title": "MS-Viewport"},
    }
    body = json.dumps(payload).encode()
    headers = gitlab_headers("Merge Request Hook", **{"Idempotency-Key": "f5e5f430-f57b-4e6e"})
    got = receive(config, "gitlab", body, headers, NOW)
    assert got.id == "f5e5f430-f57b-4e6e"
    assert got.type == "com.gitlab.merge_request.open"
    assert got.source == "https://gitlab.example.com/group/app"
    assert got.attributes["subject"] == "1"


def test_gitlab_push_without_an_idempotency_key(config: Config) -> None:
    payload = {"object_kind": "push", "ref": "refs/heads/main",
               "project": {"web_url": "https://gitlab.example.com/group/app"}}  # fmt: skip
    body = json.dumps(payload).encode()
    got = receive(config, "gitlab", body, gitlab_headers("Push Hook"), NOW)
    assert got.id == "13792a34-cac6-4fda-95a8-c58e00a3954e"
    assert (got.type, got.attributes["subject"]) == ("com.gitlab.push", "refs/heads/main")
    headers = gitlab_headers("Push Hook", **{"X-Gitlab-Token": "wrong"})
    with pytest.raises(Unauthorized):
        receive(config, "gitlab", body, headers, NOW)


# -- Stripe ----------------------------------------------------------------------------------


def stripe_event(**extra: Any) -> bytes:
    event = {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2023-10-16",
        "created": 1686089970,
        "data": {"object": {"id": "pi_3NG8Du2eZvKYlo2C0", "object": "payment_intent"}},
        "livemode": False,
        "pending_webhooks": 1,
        "type": "payment_intent.succeeded",
        **extra,
    }
    return json.dumps(event, indent=2).encode()


def stripe_signature(body: bytes, at: float, secret: str = STRIPE_SECRET) -> str:
    # Stripe: v1 = hex(HMAC-SHA256(endpoint secret, f"{t}.{raw body}")).
    t = str(int(at))
    return f"t={t},v1={hex_hmac(secret, t.encode() + b'.' + body)}"


def test_stripe_event(config: Config) -> None:
    body = stripe_event()
    headers = {"Stripe-Signature": stripe_signature(body, NOW), "Content-Type":
               "application/json; charset=utf-8"}  # fmt: skip
    got = receive(config, "stripe", body, headers, NOW + 10)
    assert got.id == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert got.type == "com.stripe.payment_intent.succeeded"
    assert got.source == "https://dashboard.stripe.com"
    assert got.attributes["subject"] == "pi_3NG8Du2eZvKYlo2C0"
    assert got.attributes["time"] == "2023-06-06T22:19:30Z"  # `created`, Unix seconds


def test_stripe_connect_events_name_the_account(config: Config) -> None:
    body = stripe_event(account="acct_1032D82eZvKYlo2C")
    got = receive(config, "stripe", body, {"Stripe-Signature": stripe_signature(body, NOW)}, NOW)
    assert got.source == "https://dashboard.stripe.com/acct_1032D82eZvKYlo2C"


def test_stripe_replays_and_wrong_secrets_are_refused(config: Config) -> None:
    body = stripe_event()
    with pytest.raises(Unauthorized, match="replay"):
        receive(config, "stripe", body, {"Stripe-Signature": stripe_signature(body, NOW)},
                NOW + 301)  # fmt: skip
    headers = {"Stripe-Signature": stripe_signature(body, NOW, "whsec_other")}
    with pytest.raises(Unauthorized):
        receive(config, "stripe", body, headers, NOW)


# -- Shopify ---------------------------------------------------------------------------------


def test_shopify_order(config: Config) -> None:
    body = json.dumps({"id": 820982911946154508, "admin_graphql_api_id":
                       "gid://shopify/Order/820982911946154508", "email": "jon@example.com"}
                      ).encode()  # fmt: skip
    # Shopify: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(client secret, raw body)).
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2023-03-29T18:00:27.877041743Z",
        "X-Shopify-API-Version": "2024-01",
        "Content-Type": "application/json",
    }
    got = receive(config, "shopify", body, headers, NOW)
    assert got.id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert got.type == "com.shopify.orders/create"
    assert got.source == "https://example.myshopify.com"
    assert got.attributes["subject"] == "gid://shopify/Order/820982911946154508"
    assert got.attributes["time"] == "2023-03-29T18:00:27.877041743Z"
    headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(b"x" * 32).decode()
    with pytest.raises(Unauthorized):
        receive(config, "shopify", body, headers, NOW)


# -- Slack -----------------------------------------------------------------------------------


def slack_headers(body: bytes, at: int, content_type: str = "application/json") -> dict[str, str]:
    # Slack: "v0=" + hex(HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")).
    base = f"v0:{at}:".encode() + body
    return {
        "X-Slack-Request-Timestamp": str(at),
        "X-Slack-Signature": "v0=" + hex_hmac(SLACK_SECRET, base),
        "Content-Type": content_type,
    }


# Slack's documented example request: a slash command, and the signature Slack shows for it.
SLACK_COMMAND = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slack_documented_slash_command(config: Config) -> None:
    headers = {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": SLACK_SIGNATURE,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    got = receive(config, "slack", SLACK_COMMAND, headers, 1531420618 + 60)
    assert got.id == "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    assert got.type == "com.slack.command/webhook-collect"
    assert got.source == "https://app.slack.com/client/T1DC2JH3J"
    assert got.attributes["subject"] == "G8PSS9T3V"
    assert (got.data, got.kind) == (SLACK_COMMAND, DataKind.BINARY)  # the form, byte for byte
    with pytest.raises(Unauthorized, match="replay"):
        receive(config, "slack", SLACK_COMMAND, headers, 1531420618 + 301)


def test_slack_event_callback_and_retry(config: Config) -> None:
    payload = {
        "token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456",
        "event": {"type": "app_mention", "user": "U123", "text": "<@U0LAN0Z89> hi",
                  "ts": "1515449522.000016", "channel": "C123ABC456"},
        "type": "event_callback", "event_id": "Ev123ABC456", "event_time": 1515449522,
    }  # fmt: skip
    body = json.dumps(payload).encode()
    at = int(NOW)
    got = receive(config, "slack", body, slack_headers(body, at), NOW)
    assert got.id == "Ev123ABC456"
    assert got.type == "com.slack.app_mention"
    assert got.attributes["subject"] == "C123ABC456"
    assert got.attributes["time"] == "2018-01-08T22:12:02Z"
    retry = {**slack_headers(body, at + 60), "X-Slack-Retry-Num": "1",
             "X-Slack-Retry-Reason": "http_timeout"}  # fmt: skip
    assert receive(config, "slack", body, retry, NOW + 60).id == got.id


def test_slack_interactivity_payload(config: Config) -> None:
    payload = {"type": "block_actions", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
               "team": {"id": "T9TK3CUKW"}, "channel": {"id": "CBR2V3XEX"}}  # fmt: skip
    body = b"payload=" + quote_plus(json.dumps(payload)).encode()
    headers = slack_headers(body, int(NOW), "application/x-www-form-urlencoded")
    got = receive(config, "slack", body, headers, NOW)
    assert (got.type, got.source) == ("com.slack.block_actions",
                                      "https://app.slack.com/client/T9TK3CUKW")  # fmt: skip
    assert got.attributes["subject"] == "CBR2V3XEX"
    assert json.loads(got.data or b"") == payload


@pytest.mark.parametrize(
    ("kind", "view", "answer"),
    [
        ("slack", {"type": "url_verification", "challenge": "3eZbrw1a", "token": "t"},
         {"challenge": "3eZbrw1a"}),
        ("slack", {"type": "event_callback", "challenge": "x"}, None),
        ("slack", {"type": "url_verification"}, None),
        (None, {"type": "url_verification", "challenge": "3eZbrw1a"}, None),
        ("slack", "text", None),
    ],
)  # fmt: skip
def test_slack_url_verification_is_answered(kind: str | None, view: Any, answer: Any) -> None:
    assert handshake(kind, view) == answer


# -- Standard Webhooks -----------------------------------------------------------------------


def test_standard_webhooks(config: Config) -> None:
    body = json.dumps({"type": "invoice.paid", "timestamp": "2022-11-03T20:26:10.344522Z",
                       "data": {"id": "in_1", "amount": 100}}).encode()  # fmt: skip
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(WHSEC).sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now,
                                                 body.decode()),
        "content-type": "application/json",
    }  # fmt: skip
    got = receive(config, "hooks", body, headers, now.timestamp())
    assert got.id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert (got.type, got.source) == ("invoice.paid", "/sources/hooks")
    assert got.attributes["time"] == "2022-11-03T20:26:10.344522Z"
    headers["webhook-id"] = "msg_other"
    with pytest.raises(Unauthorized):
        receive(config, "hooks", body, headers, now.timestamp())


def test_a_preset_event_without_its_fields_is_422_naming_them(config: Config) -> None:
    with pytest.raises(TemplateUnresolved) as caught:
        preview(config, "stripe", b'{"object": "event"}', {"Content-Type": "application/json"})
    pointers = {v.pointer for v in caught.value.errors}
    assert pointers == {"/body/id", "/body/type"}


def test_preview_defaults_to_json_and_knows_unknown_sources(config: Config) -> None:
    body = json.dumps({"action": "opened", "repository": REPO}).encode()
    got = preview(config, "github", body, {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d"})
    assert (got.type, got.datacontenttype) == ("com.github.issues.opened", "application/json")
    with pytest.raises(NotFound, match="no source named 'nope'"):
        preview(config, "nope", b"{}", {})
