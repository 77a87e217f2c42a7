"""Structured-mode output checked against the CloudEvents JSON format's own JSON Schema
(cloudevents/formats/cloudevents.json of spec v1.0.2): an oracle independent of our renderer."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from gateway.delivery.render import batch, structured
from gateway.event import DataKind, Event
from tests.conftest import load_vector
from tests.unit.test_render import from_structured, spec_cases

SCHEMA: dict[str, Any] = load_vector("cloudevents-spec/formats/cloudevents.v1.0.2.schema.json")
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)

OURS = [
    Event({"specversion": "1.0", "id": "1", "source": "/shop", "type": "t"}),
    Event(
        {
            "specversion": "1.0",
            "id": "2",
            "source": "https://shop.example/orders",
            "type": "com.example.order.created",
            "subject": "o-1",
            "time": "2026-11-30T10:00:00.123Z",
            "dataschema": "https://schemas.example/order/v2",
            "datacontenttype": "application/json",
            "partitionkey": "o-1",
            "sequence": 7,
        },
        b'{"order_id":"o-1","amount":12.5}',
        DataKind.JSON,
    ),
    Event(
        {
            "specversion": "1.0",
            "id": "3",
            "source": "/s",
            "type": "t",
            "datacontenttype": "text/plain",
        },
        b"hello",
        DataKind.TEXT,
    ),
    Event(
        {"specversion": "1.0", "id": "4", "source": "/s", "type": "t"},
        b"\x00\xff binary",
        DataKind.BINARY,
    ),
]


@pytest.mark.parametrize(
    "event", [*(from_structured(c["structured"]) for c in spec_cases()), *OURS]
)
def test_structured_output_is_valid_per_the_json_format_schema(event: Event) -> None:
    document = orjson.loads(structured(event).body)
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == []


def test_batch_output_is_an_array_of_valid_events() -> None:
    documents = orjson.loads(batch(OURS).body)
    assert len(documents) == len(OURS)
    for document in documents:
        assert [e.message for e in VALIDATOR.iter_errors(document)] == []


def test_the_schema_refuses_what_it_should() -> None:
    """The oracle can fail: an event without `id`, or with a non-URI-reference source."""
    assert list(VALIDATOR.iter_errors({"specversion": "1.0", "source": "/s", "type": "t"}))
    assert list(
        VALIDATOR.iter_errors({"specversion": "1.0", "id": "", "source": "/s", "type": "t"})
    )
