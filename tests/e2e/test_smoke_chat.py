"""A first walk through the stack: sign in, create a room, chat."""

import uuid

from support.client import Client


def user(name: str) -> dict:
    return {"id": f"{name.lower()}-{uuid.uuid4().hex[:8]}", "name": name}


async def test_two_users_chat(stack):
    """Alice creates a room with Bob, both see each other's messages in order."""
    alice = await Client.connect(stack.ws_url, dev_user=user("Alice"))
    bob = await Client.connect(stack.ws_url, dev_user=user("Bob"))
    room = (await alice.ok("create_room", {"name": "Den", "participant_ids": [bob.user["id"]]}))["room"]
    await bob.expect_event("room.created", lambda d: d["room"]["id"] == room["id"])
    sent = (await alice.ok("send_message", {"room_id": room["id"], "content": "hi bob"}))["item"]
    got = await bob.expect_event("room.item_added", lambda d: d["item"]["id"] == sent["id"])
    assert got["item"]["content"] == "hi bob"
    items = (await bob.ok("get_room_items", {"room_id": room["id"]}))["items"]
    assert [i["seq"] for i in items] == list(range(1, len(items) + 1))
    await alice.close()
    await bob.close()
