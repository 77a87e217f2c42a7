"""The router: every selector that matches, in declaration order, whatever it remembers."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.event import Event
from gateway.routing import router as router_module
from gateway.routing.filters import Filter, compile_filter
from gateway.routing.router import Router


@dataclass(frozen=True)
class Sel:
    """A selector that is not a config Subscription: routing needs only these four fields."""

    name: str
    types: tuple[str, ...] = ()
    source: str | None = None
    filters: tuple[Filter, ...] = ()


def event(kind: str, source: str = "/shop", **extra: str) -> Event:
    return Event({"specversion": "1.0", "id": "1", "source": source, "type": kind, **extra})


SELECTORS = [
    Sel("created", types=("order.created",)),
    Sel("everything"),
    Sel("shop-paid", types=("order.paid", "order.created"), source="/shop"),
    Sel("eu", filters=(compile_filter({"suffix": {"subject": "-eu"}}, "f"),)),
]


def test_routes_to_every_match_in_order() -> None:
    router = Router(SELECTORS)
    assert router.route(event("order.created")) == ("created", "everything", "shop-paid")
    assert router.route(event("order.paid", source="/other")) == ("everything",)
    assert router.route(event("order.paid", subject="o-eu")) == ("everything", "shop-paid", "eu")
    assert router.route(event("order.created", subject="x")) == ("created", "everything",
                                                                   "shop-paid")
    assert Router([]).route(event("order.created")) == ()


def test_many_types_do_not_change_the_answers() -> None:
    router = Router(SELECTORS)
    for i in range(router_module.REMEMBERED_TYPES + 10):
        assert router.route(event(f"t{i}")) == ("everything",)
    assert len(router._candidates) <= router_module.REMEMBERED_TYPES
    assert router.route(event("order.created")) == ("created", "everything", "shop-paid")
