"""End-to-end fixtures: fresh users connected to the session's stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from support.client import Client

Connect = Callable[..., Awaitable[Client]]


def new_user(name: str) -> dict[str, str]:
    return {"id": f"{name.lower()}-{uuid.uuid4().hex[:10]}", "name": name}


@pytest.fixture
async def connect(stack) -> AsyncIterator[Connect]:
    """``await connect("Alice")`` signs in a fresh user; ``connect(as_user=other.user)`` a second
    connection of the same user; ``ws_url=`` another gateway. All are closed after the test."""
    opened: list[Client] = []

    async def open_(name: str = "User", as_user: dict | None = None, ws_url: str | None = None) -> Client:
        profile = dict(as_user) if as_user else new_user(name)
        client = await Client.connect(ws_url or stack.ws_url, dev_user=profile)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        await client.close()


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
        lambda d: d["item"]["room_id"] == room_id and d["item"]["kind"] == "announcement" and text in d["item"]["content"],
    )
    return data["item"]


async def rooms_saw(sender: Client, item: dict) -> None:
    """Wait until the rooms worker has taken in ``item``: it moves the sender's read mark (room.read).

    list_rooms reads rooms' copy of each room's last item, which follows messaging's events.
    """
    await sender.expect_event(
        "room.read", lambda d: d["room_id"] == item["room_id"] and d["last_read_seq"] >= item["seq"]
    )
