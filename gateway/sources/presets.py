"""Presets: the verification scheme and event templates of well-known webhook providers.

A preset is written the way a user would write the source in YAML, so that it goes through
the same checks; a source's own `verify` keys are laid over the preset's (unless it names
another `kind`), and its own `event` entries replace the preset's attribute by attribute.
A list of templates means: the first one that resolves. Provider schemes (`kind: github`, ...)
can be used without the preset; `SCHEMES` expands them into the base kinds of `verify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Provider signature schemes, as the providers document them.
SCHEMES: dict[str, dict[str, Any]] = {
    # GitHub: X-Hub-Signature-256 = "sha256=" + hex(HMAC-SHA256(secret, raw body)).
    "github": {
        "kind": "hmac",
        "header": "X-Hub-Signature-256",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "sha256=",
    },
    # GitLab: X-Gitlab-Token carries the secret token itself.
    "gitlab": {"kind": "token", "header": "X-Gitlab-Token"},
    # Shopify: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(client secret, raw body)).
    "shopify": {
        "kind": "hmac",
        "header": "X-Shopify-Hmac-Sha256",
        "algorithm": "sha256",
        "encoding": "base64",
    },
    # Slack (signing secret, v0): X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret,
    # "v0:" + X-Slack-Request-Timestamp + ":" + raw body)); timestamps within 5 minutes.
    "slack": {
        "kind": "hmac",
        "header": "X-Slack-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "v0=",
        "signed": "v0:{timestamp}:{body}",
        "timestamp_header": "X-Slack-Request-Timestamp",
        "tolerance": "5m",
    },
}


@dataclass(frozen=True)
class Preset:
    verify: Mapping[str, Any]
    event: Mapping[str, Any]
    payload_field: str | None = None
    handshake: str | None = None


PRESETS: dict[str, Preset] = {
    "github": Preset(
        verify={"kind": "github"},
        event={
            "id": "{headers.x-github-delivery}",
            "type": [
                "com.github.{headers.x-github-event}.{body.action}",
                "com.github.{headers.x-github-event}",
            ],
            "source": [
                "{body.repository.html_url}",
                "https://github.com/{body.organization.login}",
                "{body.sender.html_url}",
            ],
            "subject": ["{body.pull_request.number}", "{body.issue.number}"],
        },
        # Webhooks created with content type application/x-www-form-urlencoded.
        payload_field="payload",
    ),
    "gitlab": Preset(
        verify={"kind": "gitlab"},
        event={
            # Idempotency-Key stays the same across GitLab's retries of one event.
            "id": ["{headers.idempotency-key}", "{headers.x-gitlab-event-uuid}"],
            "type": [
                "com.gitlab.{body.object_kind}.{body.object_attributes.action}",
                "com.gitlab.{body.object_kind}",
            ],
            "source": ["{body.project.web_url}", "{headers.x-gitlab-instance}"],
            "subject": ["{body.object_attributes.iid}", "{body.ref}"],
        },
    ),
    "stripe": Preset(
        verify={"kind": "stripe"},
        event={
            "id": "{body.id}",
            "type": "com.stripe.{body.type}",
            "source": [
                "https://dashboard.stripe.com/{body.account}",
                "https://dashboard.stripe.com",
            ],
            "subject": "{body.data.object.id}",
            "time": "{body.created}",
        },
    ),
    "shopify": Preset(
        verify={"kind": "shopify"},
        event={
            # X-Shopify-Event-Id is the same on every retry of one event.
            "id": ["{headers.x-shopify-event-id}", "{headers.x-shopify-webhook-id}"],
            "type": "com.shopify.{headers.x-shopify-topic}",
            "source": "https://{headers.x-shopify-shop-domain}",
            "subject": ["{body.admin_graphql_api_id}", "{body.id}"],
            "time": "{headers.x-shopify-triggered-at}",
        },
    ),
    "slack": Preset(
        verify={"kind": "slack"},
        event={
            "id": ["{body.event_id}", "{body.trigger_id}"],
            "type": [
                "com.slack.{body.event.type}",
                "com.slack.{body.type}",
                "com.slack.command{body.command}",  # slash commands: com.slack.command/deploy
            ],
            "source": [
                "https://app.slack.com/client/{body.team_id}",
                "https://app.slack.com/client/{body.team.id}",
            ],
            "subject": ["{body.event.channel}", "{body.channel.id}", "{body.channel_id}"],
            "time": "{body.event_time}",
        },
        # Interactivity requests are forms with the JSON in `payload`; slash commands are
        # plain forms.
        payload_field="payload",
        handshake="slack",
    ),
    "standard-webhooks": Preset(
        verify={"kind": "standard-webhooks"},
        event={
            "id": "{headers.webhook-id}",
            "type": "{body.type}",
            "time": "{body.timestamp}",
        },
    ),
}


def handshake(kind: str | None, view: Any) -> dict[str, Any] | None:
    """The answer to a provider's URL check, or None when the request is an ordinary event.

    Slack Events API: `{"type": "url_verification", "challenge": ...}` is answered with the
    challenge (after the signature was verified) and produces no event.
    """
    if kind != "slack" or not isinstance(view, dict):
        return None
    challenge = view.get("challenge")
    if view.get("type") == "url_verification" and isinstance(challenge, str):
        return {"challenge": challenge}
    return None
