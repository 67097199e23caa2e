"""gateway.registry: which local connections get a delivery, and the room membership it mirrors."""

from __future__ import annotations

from typing import Any

from gwclient import room

from contracts.envelope import Delivery, Rider
from contracts.routing import EVERYONE, room_key, user_key
from gateway.registry import Registry


def delivery(event: str, **data: Any) -> Delivery:
    return Delivery(id=f"{event}-{sorted(data.items())}", event=event, data=data)


def test_user_and_everyone_routing() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("ann", "ann-2")
    registry.add("bo", "bo-1")
    recipients, _ = registry.route(user_key("ann"), delivery("room.read", room_id="r"))
    assert sorted(recipients) == ["ann-1", "ann-2"]
    recipients, _ = registry.route(EVERYONE, delivery("presence.changed", user_id="x", online=True))
    assert sorted(recipients) == ["ann-1", "ann-2", "bo-1"]
    assert registry.route(user_key("cy"), delivery("room.read"))[0] == []


def test_room_routing_follows_membership() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("bo", "bo-1")
    assert registry.join("ann", ["r1"]) == [room_key("r1")]
    recipients, _ = registry.route(room_key("r1"), delivery("room.item_added", item={}))
    assert recipients == ["ann-1"]
    assert registry.wanted(room_key("r1")) and not registry.wanted(room_key("r2"))


def test_joining_by_user_copy_adds_the_room() -> None:
    """room.member_joined routed to a user naming them adds them to the room."""
    registry: Registry[str] = Registry()
    registry.add("bo", "bo-1")
    joined = delivery("room.member_joined", room_id="r1", user_id="bo", invited_by="ann", room=room("r1"))
    recipients, changed = registry.route(user_key("bo"), joined)
    assert recipients == ["bo-1"] and changed == [room_key("r1")]
    assert registry.route(room_key("r1"), delivery("room.item_added", item={}))[0] == ["bo-1"]


def test_a_created_room_adds_its_local_participants() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("bo", "bo-1")
    recipients, changed = registry.route(user_key("ann"), delivery("room.created", room=room("r1", "ann", "bo")))
    assert recipients == ["ann-1"] and changed == [room_key("r1")]
    # Bo is added by his own copy, not by Ann's.
    assert registry.route(room_key("r1"), delivery("room.item_added", item={}))[0] == ["ann-1"]


def test_a_room_copy_naming_a_local_newcomer_reaches_them() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("bo", "bo-1")
    registry.join("ann", ["r1"])
    joined = delivery("room.member_joined", room_id="r1", user_id="bo", invited_by="ann", room=room("r1"))
    recipients, _ = registry.route(room_key("r1"), joined)
    assert sorted(recipients) == ["ann-1", "bo-1"]


def test_the_leaver_gets_member_left_then_nothing_more() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("bo", "bo-1")
    registry.join("ann", ["r1"])
    registry.join("bo", ["r1"])
    recipients, changed = registry.route(room_key("r1"), delivery("room.member_left", room_id="r1", user_id="bo"))
    assert sorted(recipients) == ["ann-1", "bo-1"] and changed == []
    assert registry.route(room_key("r1"), delivery("room.item_added", item={}))[0] == ["ann-1"]
    recipients, changed = registry.route(user_key("ann"), delivery("room.member_left", room_id="r1", user_id="ann"))
    assert recipients == ["ann-1"] and changed == [room_key("r1")]
    assert not registry.wanted(room_key("r1"))


def test_the_last_connection_gone_releases_user_and_rooms() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("ann", "ann-2")
    registry.join("ann", ["r1"])
    assert registry.remove("ann", "ann-1") == []
    assert sorted(registry.remove("ann", "ann-2")) == sorted([user_key("ann"), room_key("r1")])
    assert not registry.wanted(user_key("ann")) and not registry.wanted(room_key("r1"))
    assert registry.wanted(EVERYONE)
    assert registry.route(room_key("r1"), delivery("room.item_added", item={}))[0] == []


def test_a_join_or_leave_that_breaks_its_contract_is_relayed_and_changes_nothing() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    registry.add("bo", "bo-1")
    registry.join("bo", ["r1"])
    partial = delivery("room.member_joined", room_id="r2", user_id="ann", invited_by="bo", room={"id": "r2"})
    assert registry.route(user_key("ann"), partial) == (["ann-1"], [])
    assert not registry.wanted(room_key("r2"))
    nameless = delivery("room.member_left", room_id="r1")
    assert registry.route(room_key("r1"), nameless) == (["bo-1"], [])
    assert registry.route(room_key("r1"), delivery("room.item_added", item={}))[0] == ["bo-1"]


def test_a_rider_naming_a_join_adds_the_room() -> None:
    """Riders are routed like deliveries: a member's own room.member_joined joins them too."""
    registry: Registry[str] = Registry()
    registry.add("bo", "bo-1")
    data = {"room_id": "r1", "user_id": "bo", "invited_by": "ann", "room": room("r1", "ann", "bo")}
    rider = Rider(id="j1", key=user_key("bo"), event="room.member_joined", data=data)
    assert registry.route(rider.key, rider) == (["bo-1"], [room_key("r1")])
    assert registry.wanted(room_key("r1"))


def test_joins_and_leaves_sent_to_everyone_change_nothing() -> None:
    registry: Registry[str] = Registry()
    registry.add("ann", "ann-1")
    recipients, changed = registry.route(EVERYONE, delivery("room.created", room=room("r1", "ann")))
    assert recipients == ["ann-1"] and changed == []
    assert not registry.wanted(room_key("r1"))
