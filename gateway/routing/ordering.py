"""Per-key ordering (CONTRACT 5, `delivery.ordering: {key: <attribute>}`): the key of each row.

At append, every SINK row of an ordered subscription carries `ordering_key`, the canonical
string of the event's value of the subscription's key attribute (NULL when the event lacks it:
unordered). The stores then lease only the head of each key: a keyed row waits while an earlier
row of the same subscription and key is PENDING (leased rows are PENDING too), so the next
event of a key is not attempted before the one before it is delivered or dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.event import Event, canonical


def keys(
    ordering: Mapping[str, str], event: Event, names: tuple[str, ...]
) -> tuple[str | None, ...] | None:
    """The key of each of `names`' rows, or None when none of them is ordered (the cheap
    common case: no per-row work). `ordering`: ordered subscription -> its key attribute
    (`gateway.config.model.ordering_attributes`)."""
    if not ordering:
        return None
    attrs = event.attributes
    found: list[str | None] = []
    any_key = False
    for name in names:
        attr = ordering.get(name)
        value = attrs.get(attr) if attr is not None else None
        if value is None:
            found.append(None)
        else:
            found.append(canonical(value))
            any_key = True
    return tuple(found) if any_key else None
