"""Which subscriptions take an event: a router built once from the subscriptions' selectors.

Routing runs per event, so the router remembers, per event `type`, which selectors can take it
at all (those without a `types` shorthand, and those that list the type); `filters.match` then
decides each candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.event import Event
from gateway.routing.filters import Selector, match

# Distinct event types whose candidates are remembered; past it the memory starts afresh, so a
# producer inventing types cannot grow it without bound.
REMEMBERED_TYPES = 1024


class Router:
    def __init__(
        self, selectors: Iterable[Selector], ordering: Mapping[str, str] | None = None
    ) -> None:
        self._selectors = tuple(selectors)
        # Per-key ordering (CONTRACT 5): ordered subscription -> its key attribute.
        self.ordering: Mapping[str, str] = ordering or {}
        self._candidates: dict[object, tuple[Selector, ...]] = {}

    def route(self, event: Event) -> tuple[str, ...]:
        """Names of the selectors whose types, source and filters match the event, in order."""
        kind = event.attributes.get("type")
        candidates = self._candidates.get(kind)
        if candidates is None:
            if len(self._candidates) >= REMEMBERED_TYPES:
                self._candidates.clear()
            candidates = tuple(s for s in self._selectors if not s.types or kind in s.types)
            self._candidates[kind] = candidates
        return tuple(s.name for s in candidates if match(s, event))
