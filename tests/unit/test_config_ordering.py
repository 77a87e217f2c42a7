"""`delivery.ordering: {key: <attribute>}` (CONTRACT 5): read, merged over the defaults, and
refused with file, line and path when the key is not a CloudEvents attribute name."""

from __future__ import annotations

import pytest

from gateway.config import load
from gateway.event import DataKind, Event
from gateway.routing import ordering
from tests.unit.test_config import ENV, Deployer, deploy

__all__ = ["deploy"]  # fixture


def test_ordering_key_is_read_and_merged_over_the_defaults(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "defaults:\n  delivery:\n    ordering: {key: partitionkey}\n",
            "config/subscriptions/s.yaml": """\
            subscriptions:
              - name: defaults
                sink: http://127.0.0.1:9001/
              - name: by-subject
                sink: http://127.0.0.1:9002/
                delivery:
                  ordering: {key: subject}
            """,
        }
    )
    subs = {s.name: s.delivery.ordering for s in load(path, ENV).subscriptions}
    assert subs == {"defaults": "partitionkey", "by-subject": "subject"}


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        ("ordering: {key: PartitionKey}",
         "s.yaml:5: subscriptions[0].delivery.ordering.key: 'PartitionKey' is not a CloudEvents "
         "attribute name"),
        ("ordering: {key: partition_key}", "'partition_key' is not a CloudEvents attribute name"),
        ("ordering: {key: ''}", "ordering.key: must not be empty"),
        ("ordering: {key: data}", "ordering.key: 'data' is the event's payload, not an attribute"),
        ("ordering: {key: 7}", "ordering.key: must be a string"),
        ("ordering: {}", "delivery.ordering: must name the attribute, like {key: partitionkey}"),
        ("ordering: partitionkey", "delivery.ordering: must be a mapping"),
        ("ordering: {key: subject, by: id}", "ordering.by: unknown key 'by'"),
    ],
)
def test_bad_ordering_is_refused_with_its_line(
    deploy: Deployer, delivery: str, expected: str
) -> None:
    head = "subscriptions:\n  - name: a\n    sink: http://127.0.0.1/\n    delivery:\n"
    text = f"{head}      {delivery}\n"
    problems = deploy.problems({"config/gateway.yaml": "", "config/subscriptions/s.yaml": text})
    assert len(problems) == 1, problems
    assert expected in problems[0], problems


def test_keys_are_the_canonical_string_of_each_subscriptions_attribute() -> None:
    attrs = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": "o-1",
             "seq": 7, "flag": True}
    event = Event(attrs, None, DataKind.NONE)  # type: ignore[arg-type]
    by = {"a": "subject", "b": "seq", "c": "flag", "d": "partitionkey"}
    assert ordering.keys(by, event, ("a", "b", "c", "d", "e")) == ("o-1", "7", "true", None, None)
    assert ordering.keys(by, event, ("d", "e")) is None  # no key at all: nothing per row
    assert ordering.keys({}, event, ("a",)) is None
