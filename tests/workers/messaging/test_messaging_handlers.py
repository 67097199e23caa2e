"""The messaging worker's commands and reactions, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.handlers import event, harness

from contracts.envelope import Failure
from contracts.events import MemberRemoved, RoomOpened
from contracts.shapes import Room
from workers.messaging.app import WORKER


@pytest.fixture
async def messaging(mongo_url):
    return await harness(WORKER, mongo_url)


def room_of(*user_ids: str, room_id: str = "r1") -> Room:
    return Room(
        id=room_id,
        name="Den",
        image_url=None,
        participant_ids=list(user_ids),
        created_by=user_ids[0],
        created_at=datetime.now(UTC),
        last_seq=0,
    )


def rooms_answer(messaging, room: Room) -> None:
    def access(command):
        if command.data["room_id"] != room.id:
            return Failure(code="not_found", message="no such room")
        if command.user_id not in room.participant_ids:
            return Failure(code="forbidden", message="not a member of this room")
        return {"room": room.model_dump(mode="json")}

    messaging.rpc.answer("rooms", "room_access", access)
    messaging.rpc.answer("rooms", "room_snapshot", lambda c: {"room": room.model_dump(mode="json")})


async def test_send_message_numbers_and_publishes(messaging):
    """A message gets the next seq, is published to the room and readable in get_room_items."""
    alice, bob = messaging.add_users("Alice", "Bob")
    rooms_answer(messaging, room_of(alice.id, bob.id))
    item = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "hi"}))["item"]
    assert item["seq"] == 1 and item["sender_id"] == alice.id
    [sent] = messaging.sent("room.item_added", "room.r1")
    assert sent["data"] == {"item": item}
    page = await messaging.ok("get_room_items", bob, {"room_id": "r1"})
    assert page == {"items": [item], "has_more": False}


async def test_membership_is_asked_of_rooms(messaging):
    """A non-member is forbidden and a missing room not_found, as rooms says; nothing is written."""
    alice, eve = messaging.add_users("Alice", "Eve")
    rooms_answer(messaging, room_of(alice.id))
    assert await messaging.error("send_message", eve, {"room_id": "r1", "content": "hi"}) == "forbidden"
    assert await messaging.error("send_message", alice, {"room_id": "r2", "content": "hi"}) == "not_found"
    assert await messaging.error("get_room_items", eve, {"room_id": "r1"}) == "forbidden"
    assert messaging.outbox.events == []


async def test_rooms_unavailable_is_not_remembered(messaging):
    """unavailable is not an outcome: a retry with the same id acts once rooms answers."""
    [alice] = messaging.add_users("Alice")
    reply = await messaging.command("send_message", alice, {"room_id": "r1", "content": "hi"}, id="x")
    assert reply.error.code == "unavailable"
    rooms_answer(messaging, room_of(alice.id))
    assert (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "hi"}, id="x"))["item"]["seq"] == 1


async def test_announcements_once_per_event(messaging):
    """room.created and room.member_left are announced, each once even if redelivered."""
    alice, bob = messaging.add_users("Alice", "Bob")
    room = room_of(alice.id, bob.id)
    created = event("room.created", RoomOpened(room=room, names={alice.id: "Alice", bob.id: "Bob"}))
    await messaging.react("announce_room_created", created)
    left = event("room.member_left", MemberRemoved(room=room_of(alice.id), user_id=bob.id, user_name="Bob"))
    await messaging.react("announce_member_left", left)
    await messaging.react("announce_member_left", left)
    rooms_answer(messaging, room)
    items = (await messaging.ok("get_room_items", alice, {"room_id": "r1"}))["items"]
    assert [(i["seq"], i["kind"], i["content"]) for i in items] == [
        (1, "announcement", "Alice created the room Den"),
        (2, "announcement", "Bob left"),
    ]
    [_, gone] = messaging.events("room.item_added")
    assert gone["payload"]["participant_ids"] == [alice.id], "the leaver gets no push for it"
