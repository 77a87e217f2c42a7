"""Fair slots: each active subscription is guaranteed its share of `dispatch.max_in_flight`."""

from __future__ import annotations

import pytest

from gateway.delivery.slots import ACTIVE_FOR, Slots

NOW = 1000.0


def busy(slots: Slots, name: str, count: int) -> None:
    for _ in range(count):
        slots.take(name, NOW)


def test_first_come_cannot_take_what_others_are_owed() -> None:
    """The measured failure: four slow subscriptions fill 64 slots; a healthy one finds none."""
    caps = {"slow1": 64, "slow2": 64, "slow3": 64, "slow4": 64, "healthy": 64}
    slots = Slots(64, caps)
    for name in caps:  # all five active: each has an attempt in flight
        busy(slots, name, 1)
    for name in ("slow1", "slow2", "slow3", "slow4"):
        while (room := slots.plan(NOW).room(name)) > 0:
            busy(slots, name, room)
    # 64 // 5 = 12 each; the healthy one keeps the 11 of its share it is not using.
    assert slots.plan(NOW).room("healthy") == 11
    assert slots.in_flight == 64 - 11


def test_slots_held_past_a_share_come_back_as_attempts_end() -> None:
    """Running attempts are never taken back: a late-comer gets its share as they end."""
    slots = Slots(20, {"slow": 100, "late": 100})
    busy(slots, "slow", 20)
    assert slots.plan(NOW).room("late") == 0
    for _ in range(10):
        slots.give("slow", NOW)
    assert slots.plan(NOW).room("late") == 1  # idle: owed one slot
    busy(slots, "late", 1)  # now active: owed half of the 20
    assert slots.plan(NOW).room("slow") == 0
    assert slots.plan(NOW).room("late") == 9


def test_a_lone_subscription_may_use_every_slot() -> None:
    slots = Slots(64, {"only": 100})
    assert slots.plan(NOW).room("only") == 64
    busy(slots, "only", 64)
    assert slots.plan(NOW).room("only") == 0


def test_idle_subscriptions_are_each_owed_one_slot() -> None:
    slots = Slots(30, {"busy": 100, "idle1": 100, "idle2": 100})
    busy(slots, "busy", 1)
    plan = slots.plan(NOW)
    # busy is owed what the idle ones do not need (30 - 2), and has 1 of it in use.
    assert plan.room("busy") == 27
    assert plan.room("idle1") == 1
    plan.took("busy", 27)
    assert (plan.room("busy"), plan.room("idle1"), plan.room("idle2")) == (0, 1, 1)


def test_the_first_pass_over_idle_subscriptions_leaves_each_a_slot() -> None:
    """Nobody is active at start: first come does not mean first served everything."""
    caps = {"slow1": 16, "slow2": 16, "slow3": 16, "slow4": 16, "healthy": 16}
    slots = Slots(32, caps)
    plan = slots.plan(NOW)
    taken = {}
    for name in caps:
        taken[name] = min(caps[name], plan.room(name))
        plan.took(name, taken[name])
    assert taken["healthy"] >= 1
    assert sum(taken.values()) == 32


def test_a_share_is_capped_by_the_subscriptions_own_bound() -> None:
    slots = Slots(100, {"small": 4, "big": 1000})
    busy(slots, "small", 1)
    busy(slots, "big", 1)
    # small is owed at most its own bound (3 more); big may take everything else.
    assert slots.plan(NOW).room("big") == 100 - 2 - 3


@pytest.mark.parametrize("later", [ACTIVE_FOR - 0.1, ACTIVE_FOR + 0.1])
def test_a_subscription_stays_active_for_a_while_after_its_last_attempt(later: float) -> None:
    slots = Slots(20, {"a": 100, "b": 100})
    slots.take("a", NOW)
    slots.give("a", NOW)
    plan = slots.plan(NOW + later)
    if later < ACTIVE_FOR:
        assert plan.room("b") == 1  # a is still active: owed all but b's one slot
    else:
        assert plan.room("b") == 19  # both idle: one slot stays owed to a
    assert slots.in_flight == 0


def test_took_spends_the_guarantee_before_the_common_slots() -> None:
    slots = Slots(10, {"a": 100, "b": 100})
    busy(slots, "a", 1)
    busy(slots, "b", 1)
    plan = slots.plan(NOW)
    assert (plan.room("a"), plan.room("b")) == (4, 4)
    plan.took("a", 4)
    assert (plan.room("a"), plan.room("b")) == (0, 4)
