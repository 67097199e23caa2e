"""Rooms through the gateway: creation, invitations, leaving, names, images, read marks."""

from __future__ import annotations

from e2e.helpers import announced, make_room


async def test_create_room_announces_and_includes_the_creator(connect):
    """The creator is always a participant; duplicates and the creator are ignored in the list."""
    alice, bob = await connect("Alice"), await connect("Bob")
    data = await alice.ok(
        "create_room", {"name": "  Den ", "participant_ids": [bob.user["id"], bob.user["id"], alice.user["id"]]}
    )
    room = data["room"]
    assert room["name"] == "Den"
    assert room["participant_ids"] == [alice.user["id"], bob.user["id"]]
    assert room["created_by"] == alice.user["id"] and room["last_seq"] == 0
    assert room["created_at"].endswith("Z")
    created = await bob.expect_event("room.created", lambda d: d["room"]["id"] == room["id"])
    assert created["room"] == room
    item = await announced(bob, room["id"], "Alice")
    assert item["seq"] == 1 and item["sender_id"] is None
    assert bob.user["id"] not in item["content"], "announcements name users by name, never by id"


async def test_create_room_with_an_unknown_user_is_not_found(connect):
    """Naming a user Boochat does not know is not_found, and creates nothing."""
    alice = await connect("Alice")
    error = await alice.error("create_room", {"name": "Den", "participant_ids": ["nobody-ever"]})
    assert error["code"] == "not_found"
    assert (await alice.ok("list_rooms"))["rooms"] == []


async def test_invite_then_history_and_read_mark(connect):
    """The invitee can read the whole history; their mark starts at the latest item before their arrival."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice)
    await announced(alice, room["id"], "created")
    await alice.ok("send_message", {"room_id": room["id"], "content": "before bob"})
    assert await alice.ok("invite_to_room", {"room_id": room["id"], "user_id": bob.user["id"]}) == {}
    joined = await bob.expect_event("room.member_joined", lambda d: d["room_id"] == room["id"])
    assert joined["user_id"] == bob.user["id"] and joined["invited_by"] == alice.user["id"]
    assert bob.user["id"] in joined["room"]["participant_ids"]
    await alice.expect_event("room.member_joined", lambda d: d["room_id"] == room["id"])
    await announced(bob, room["id"], "Bob")
    items = (await bob.ok("get_room_items", {"room_id": room["id"]}))["items"]
    assert [i["content"] for i in items][1] == "before bob"
    summary = next(s for s in (await bob.ok("list_rooms"))["rooms"] if s["room"]["id"] == room["id"])
    assert summary["last_read_seq"] == 2 and summary["unread_count"] == 0


async def test_invite_errors(connect):
    """Only participants invite (forbidden); an existing participant is a conflict; unknown users not_found."""
    alice, bob, carol = await connect("Alice"), await connect("Bob"), await connect("Carol")
    room = await make_room(alice, bob)
    assert (await carol.error("invite_to_room", {"room_id": room["id"], "user_id": carol.user["id"]}))[
        "code"
    ] == "forbidden"
    assert (await alice.error("invite_to_room", {"room_id": room["id"], "user_id": bob.user["id"]}))[
        "code"
    ] == "conflict"
    assert (await alice.error("invite_to_room", {"room_id": room["id"], "user_id": "ghost"}))["code"] == "not_found"
    assert (await alice.error("invite_to_room", {"room_id": "no-such-room", "user_id": bob.user["id"]}))[
        "code"
    ] == "not_found"
    # not_found for the target room wins over forbidden
    assert (await carol.error("invite_to_room", {"room_id": "no-such-room", "user_id": "ghost"}))["code"] == "not_found"
    # forbidden wins over not_found for another id named
    assert (await carol.error("invite_to_room", {"room_id": room["id"], "user_id": "ghost"}))["code"] == "forbidden"


async def test_leaver_gets_member_left_and_nothing_after(connect):
    """A member who leaves gets room.member_left, not the announcement, nor what others post after."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    await announced(bob, room["id"], "created")
    await bob.ok("leave_room", {"room_id": room["id"]})
    left = await bob.expect_event("room.member_left", lambda d: d["room_id"] == room["id"])
    assert left == {"room_id": room["id"], "user_id": bob.user["id"]}
    await alice.expect_event("room.member_left", lambda d: d["room_id"] == room["id"])
    await announced(alice, room["id"], "Bob")
    for n in range(3):
        await alice.ok("send_message", {"room_id": room["id"], "content": f"after {n}"})
    await alice.expect_event("room.item_added", lambda d: d["item"]["content"] == "after 2")
    await bob.sync()
    assert bob.pending("room.item_added", lambda d: d["item"]["room_id"] == room["id"]) == []
    assert (await bob.error("send_message", {"room_id": room["id"], "content": "hi"}))["code"] == "forbidden"
    assert (await bob.error("get_room_items", {"room_id": room["id"]}))["code"] == "forbidden"
    assert (await bob.error("get_room", {"room_id": room["id"]}))["code"] == "forbidden"
    assert all(s["room"]["id"] != room["id"] for s in (await bob.ok("list_rooms"))["rooms"])


async def test_room_is_kept_when_the_last_participant_leaves(connect):
    """Leaving an empty room keeps it; the leaver can be invited back by nobody, so it is just kept."""
    alice = await connect("Alice")
    room = await make_room(alice)
    await alice.ok("leave_room", {"room_id": room["id"]})
    assert (await alice.error("get_room", {"room_id": room["id"]}))["code"] == "forbidden"


async def test_rename_and_image_send_updates_only_on_change(connect):
    """room.updated goes to participants only when the name or image changes."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    await alice.ok("rename_room", {"room_id": room["id"], "name": "  Attic "})
    updated = await bob.expect_event("room.updated", lambda d: d["room"]["id"] == room["id"])
    assert updated["room"]["name"] == "Attic"
    await alice.ok("rename_room", {"room_id": room["id"], "name": "Attic"})
    await alice.ok("change_room_image", {"room_id": room["id"], "image_url": "https://img.example/a.png"})
    updated = await bob.expect_event("room.updated", lambda d: d["room"]["id"] == room["id"])
    assert updated["room"]["image_url"] == "https://img.example/a.png"
    await bob.sync()
    assert bob.pending("room.updated") == []
    assert (await bob.ok("get_room", {"room_id": room["id"]}))["room"]["name"] == "Attic"


async def test_mark_room_read(connect):
    """The mark moves to the latest item without seq or beyond it, never backwards; room.read only when it moves."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    await announced(bob, room["id"], "created")
    for n in range(3):
        await alice.ok("send_message", {"room_id": room["id"], "content": f"m{n}"})
    await bob.expect_event("room.item_added", lambda d: d["item"]["content"] == "m2")
    summary = next(s for s in (await bob.ok("list_rooms"))["rooms"] if s["room"]["id"] == room["id"])
    assert summary["unread_count"] == 3 and summary["last_read_seq"] == 0
    assert await bob.ok("mark_room_read", {"room_id": room["id"], "seq": 2}) == {"last_read_seq": 2}
    assert (await bob.expect_event("room.read"))["last_read_seq"] == 2
    assert await bob.ok("mark_room_read", {"room_id": room["id"], "seq": 1}) == {"last_read_seq": 2}
    assert await bob.ok("mark_room_read", {"room_id": room["id"], "seq": 99}) == {"last_read_seq": 4}
    assert (await bob.expect_event("room.read"))["last_read_seq"] == 4
    await bob.sync()
    assert bob.pending("room.read") == []
    summary = next(s for s in (await bob.ok("list_rooms"))["rooms"] if s["room"]["id"] == room["id"])
    assert summary["unread_count"] == 0 and summary["last_item"]["content"] == "m2"


async def test_list_rooms_latest_activity_first(connect):
    """Rooms come by their last item's time, else their creation."""
    alice = await connect("Alice")
    first = await make_room(alice, name="First")
    second = await make_room(alice, name="Second")
    await announced(alice, second["id"], "created")
    # right after the reply: sending already moved the room up
    await alice.ok("send_message", {"room_id": first["id"], "content": "bump"})
    assert [s["room"]["name"] for s in (await alice.ok("list_rooms"))["rooms"]] == ["First", "Second"]


async def test_unknown_and_foreign_rooms(connect):
    """Reading a room one is not in is forbidden, a missing one not_found; neither carries content."""
    alice, eve = await connect("Alice"), await connect("Eve")
    room = await make_room(alice, name="Secret")
    error = await eve.error("get_room", {"room_id": room["id"]})
    assert error["code"] == "forbidden" and "Secret" not in str(error)
    assert (await eve.error("get_room", {"room_id": "missing"}))["code"] == "not_found"
    assert (await eve.error("mark_room_read", {"room_id": room["id"]}))["code"] == "forbidden"
    assert (await eve.error("rename_room", {"room_id": room["id"], "name": "x"}))["code"] == "forbidden"
