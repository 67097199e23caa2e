"""Helpers of the end-to-end tests: fresh users, rooms everyone has seen, announcements."""

from __future__ import annotations

import uuid

from support.client import Client


def new_user(name: str) -> dict[str, str]:
    return {"id": f"{name.lower()}-{uuid.uuid4().hex[:10]}", "name": name}


async def make_room(owner: Client, *others: Client, name: str = "Den") -> dict:
    """A room of ``owner`` and ``others``, once every member has seen room.created."""
    room = (await owner.ok("create_room", {"name": name, "participant_ids": [o.user["id"] for o in others]}))["room"]
    for member in (owner, *others):
        await member.expect_event("room.created", lambda d: d["room"]["id"] == room["id"])
    return room


async def announced(client: Client, room_id: str, text: str) -> dict:
    """Wait for the announcement in ``room_id`` whose content contains ``text``."""
    data = await client.expect_event(
        "room.item_added",
        lambda d: (
            d["item"]["room_id"] == room_id and d["item"]["kind"] == "announcement" and text in d["item"]["content"]
        ),
    )
    return data["item"]
