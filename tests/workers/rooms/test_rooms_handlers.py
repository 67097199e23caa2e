"""The rooms worker's commands and reactions, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.handlers import event, harness

from contracts.events import ItemAppended
from contracts.routing import room_key, user_key
from contracts.shapes import RoomItem
from workers.rooms.app import WORKER


@pytest.fixture
async def rooms(mongo_url):
    return await harness(WORKER, mongo_url)


def item(room_id: str, seq: int, sender: str | None, kind: str = "message") -> ItemAppended:
    return ItemAppended(
        item=RoomItem(
            id=f"i{seq}", room_id=room_id, seq=seq, kind=kind, sender_id=sender, content="x", sent_at=datetime.now(UTC)
        ),
        room_name="Den",
        sender_name=None,
        participant_ids=[],
    )


async def seen(rooms, added) -> None:
    """Rooms takes in messaging's room.item_added: its projection, then its reaction."""
    await rooms.react("track_activity", added)
    await rooms.react("move_sender_mark", added)


async def test_create_room_stores_publishes_and_replies(rooms):
    """create_room: the reply's room, a room.created event, and room.created to every participant."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]
    assert room["participant_ids"] == [alice.id, bob.id]
    [created] = rooms.events("room.created")
    assert created["payload"]["names"] == {alice.id: "Alice", bob.id: "Bob"}
    assert created["version"] == 1 and created["correlation_id"] and created["actor_id"] == alice.id
    assert {d["key"] for d in rooms.sent("room.created")} == {user_key(alice.id), user_key(bob.id)}
    assert (await rooms.ok("get_room", bob, {"room_id": room["id"]}))["room"] == room


async def test_retried_create_room_makes_one_room(rooms):
    """The same command id returns the first reply and creates nothing more."""
    [alice] = rooms.add_users("Alice")
    first = await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}, id="same")
    again = await rooms.ok("create_room", alice, {"name": "Other", "participant_ids": []}, id="same")
    assert again == first
    assert len(rooms.events("room.created")) == 1
    assert len((await rooms.ok("list_rooms", alice))["rooms"]) == 1


async def test_retry_after_a_crash_before_the_reply_was_remembered(rooms):
    """Events stored with the command but no remembered reply (a crash): the retry replies from the events."""
    from workers.runtime.store import ProcessedCommand

    [alice] = rooms.add_users("Alice")
    first = await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}, id="crash")
    await ProcessedCommand.find_all().delete()
    assert await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}, id="crash") == first
    assert len(rooms.events("room.created")) == 1


async def test_invite_leave_and_marks(rooms):
    """An invitee's mark starts at the latest item; a returning member keeps the later mark."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]
    for seq in (1, 2, 3):
        await seen(rooms, event("room.item_added", item(room_id, seq, alice.id)))
    await rooms.ok("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id})
    assert rooms.sent("room.member_joined", room_key(room_id)) and rooms.sent("room.member_joined", user_key(bob.id))
    assert (await rooms.ok("mark_room_read", bob, {"room_id": room_id}))["last_read_seq"] == 3
    await rooms.ok("leave_room", bob, {"room_id": room_id})
    [left] = rooms.events("room.member_left")
    assert left["payload"]["user_name"] == "Bob" and bob.id not in left["payload"]["room"]["participant_ids"]
    assert await rooms.error("get_room", bob, {"room_id": room_id}) == "forbidden"
    await rooms.ok("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id})
    summary = (await rooms.ok("list_rooms", bob))["rooms"][0]
    assert summary["last_read_seq"] == 3


async def test_an_item_is_taken_in_once(rooms):
    """A redelivered room.item_added changes nothing more."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]["id"]
    delivered = event("room.item_added", item(room_id, 1, alice.id))
    await seen(rooms, delivered)
    await seen(rooms, delivered)
    summary = (await rooms.ok("list_rooms", bob))["rooms"][0]
    assert summary["unread_count"] == 1 and summary["last_item"]["seq"] == 1
    assert len(rooms.events("room.read")) == 1  # alice's mark moved once


async def test_unread_ignores_announcements_and_own_messages(rooms):
    """unread_count counts other users' messages after the mark."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]["id"]
    await seen(rooms, event("room.item_added", item(room_id, 1, None, "announcement")))
    await seen(rooms, event("room.item_added", item(room_id, 2, alice.id)))
    await seen(rooms, event("room.item_added", item(room_id, 3, bob.id)))
    bobs = (await rooms.ok("list_rooms", bob))["rooms"][0]
    assert bobs["unread_count"] == 0 and bobs["last_read_seq"] == 3
    alices = (await rooms.ok("list_rooms", alice))["rooms"][0]
    assert alices["unread_count"] == 1 and alices["last_read_seq"] == 2


async def test_queries_change_nothing_and_are_not_remembered(rooms):
    """A query with a reused id is answered afresh."""
    [alice] = rooms.add_users("Alice")
    assert (await rooms.ok("list_rooms", alice, id="q"))["rooms"] == []
    await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []})
    assert len((await rooms.ok("list_rooms", alice, id="q"))["rooms"]) == 1


async def test_internal_requests(rooms):
    """user_rooms lists a user's rooms; room_access refuses outsiders; open_meetup_room is idempotent by id."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]
    assert (await rooms.ok("user_rooms", alice))["room_ids"] == [room_id]
    assert await rooms.error("room_access", bob, {"room_id": room_id}) == "forbidden"
    data = {"room_id": "meetup-room", "meetup_id": "m1", "name": "Picnic", "participant_ids": [bob.id]}
    first = await rooms.ok("open_meetup_room", alice, data)
    assert await rooms.ok("open_meetup_room", alice, data, id="another") == first
    assert rooms.events("room.created")[-1]["payload"]["meetup_id"] == "m1"
