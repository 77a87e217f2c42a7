"""CloudEvents built with the `cloudevents` SDK, as a producer would build them."""

from __future__ import annotations

import uuid
from typing import Any

from cloudevents.core.bindings.http import (
    HTTPMessage,
    from_http_event,
    to_binary_event,
    to_structured_event,
)
from cloudevents.core.v1.event import CloudEvent

from tests.integration.subscriber import Received

ORDER = "com.example.order.created"


def order(order_id: str | None = None, amount: int = 1200, **attrs: Any) -> CloudEvent:
    attributes = {
        "type": ORDER,
        "source": "/shop",
        "id": order_id or str(uuid.uuid4()),
        "datacontenttype": "application/json",
        **attrs,
    }
    return CloudEvent(attributes, {"order_id": attributes["id"], "amount": amount})


def structured(event: CloudEvent) -> dict[str, Any]:
    """kwargs for `client.post`: the event in structured mode."""
    message = to_structured_event(event)
    return {"data": message.body, "headers": message.headers}


def binary(event: CloudEvent) -> dict[str, Any]:
    message = to_binary_event(event)
    return {"data": message.body, "headers": message.headers}


def received_event(received: Received) -> CloudEvent:
    """Decode what a subscriber received, with the SDK as the independent oracle."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    return from_http_event(HTTPMessage(headers, received.body))
