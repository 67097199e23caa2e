"""``typing`` through real gateways: to the room's other connected members only, throttled, a stop
only after a start, refused outside the room, never stored (PROTOCOL.md, Everyday chat)."""

from __future__ import annotations

from support.client import Client

from e2e.helpers import make_room


def typist(room_id: str, user: Client, active: bool = True):  # noqa: ANN201  # a predicate
    return lambda d: d == {"room_id": room_id, "user_id": user.user["id"], "active": active}


async def test_typing_reaches_the_other_members_only(connect):
    alice, bob, carol = await connect("Alice"), await connect("Bob"), await connect("Carol")
    alice2 = await connect(as_user=alice.user)
    room = await make_room(alice, bob)
    other = await make_room(bob, carol, alice2, name="Other")  # carol shares a room with bob, not this one
    await alice2.expect_event("room.created", lambda d: d["room"]["id"] == room["id"])

    assert await alice.ok("typing", {"room_id": room["id"]}) == {}
    await bob.expect_event("room.typing", typist(room["id"], alice))
    # Barriers: bob's typing, published after alice's, reaches alice's other connection and carol
    # through the same queue, so alice's had been routed already: it went to neither of them.
    await bob.ok("typing", {"room_id": other["id"]})
    for client in (alice, alice2, carol):
        await client.expect_event("room.typing", typist(other["id"], bob))
    for client in (alice, alice2, carol):  # never back to the typist, nor outside the room
        assert client.pending("room.typing") == []


async def test_typing_is_throttled_and_a_stop_follows_a_start(connect):
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    assert await bob.ok("typing", {"room_id": room["id"], "active": False}) == {}  # no start: dropped
    for _ in range(3):
        await alice.ok("typing", {"room_id": room["id"]})
    await alice.ok("typing", {"room_id": room["id"], "active": False})
    await bob.expect_event("room.typing", typist(room["id"], alice, active=False))
    # of three starts within the throttle's window one was sent on, before the stop
    assert bob.pending("room.typing") == [{"room_id": room["id"], "user_id": alice.user["id"], "active": True}]
    assert alice.pending("room.typing") == []  # bob's stop without a start went nowhere


async def test_typing_outside_a_room_or_with_bad_data_is_refused(connect):
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(bob)
    refused = await alice.error("typing", {"room_id": room["id"]})
    assert refused["code"] == "forbidden"
    assert (await alice.error("typing", {"room_id": "no-such-room"}))["code"] == "forbidden"
    bad = await alice.error("typing", {"room_id": room["id"], "active": "yes"})
    assert bad["code"] == "bad_request" and "data.active" in bad["details"]
    await bob.ok("typing", {"room_id": room["id"]})  # alone in the room: nobody to tell
    await bob.sync()
    assert bob.pending("room.typing") == []


async def test_typing_leaves_no_trace_in_the_room(connect):
    """Nothing stored: the room's timeline and last_seq are as before."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    before = await alice.ok("get_room", {"room_id": room["id"]})
    await alice.ok("typing", {"room_id": room["id"]})
    await bob.expect_event("room.typing", typist(room["id"], alice))
    assert await alice.ok("get_room", {"room_id": room["id"]}) == before
