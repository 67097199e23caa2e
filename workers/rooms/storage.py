"""Rooms' collections: the Room aggregate, and the messages it counts for unread counts."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, IndexModel

from contracts.shapes import RoomItem
from workers.rooms.domain import RoomState
from workers.runtime.store import Aggregate

STATE_FIELDS = [f.name for f in fields(RoomState)]


class RoomDoc(Aggregate):
    name: str
    image_url: str | None = None
    participant_ids: list[str]
    created_by: str
    created_at: datetime
    meetup_id: str | None = None
    last_seq: int = 0
    last_item: RoomItem | None = None
    read_marks: dict[str, int] = {}

    class Settings:
        name = "rooms"
        # Compound, not single-field: the stand-in's single-field index on an array breaks find().
        indexes = [IndexModel([("participant_ids", ASCENDING), ("created_at", ASCENDING)])]

    def state(self) -> RoomState:
        return RoomState(**{name: getattr(self, name) for name in STATE_FIELDS})

    def update(self, state: RoomState) -> RoomDoc:
        for name in STATE_FIELDS:
            setattr(self, name, getattr(state, name))
        return self

    @classmethod
    def new(cls, state: RoomState) -> RoomDoc:
        return cls(**vars(state))


class CountedMessage(Document):
    """A message of a room, by sender: what unread counts count."""

    id: str  # type: ignore[assignment]  # <room_id>:<seq>
    room_id: str
    seq: int
    sender_id: str

    class Settings:
        name = "messages"
        indexes = [IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)])]


async def load(room_id: str) -> RoomDoc | None:
    return await RoomDoc.get(room_id)


async def rooms_of(user_id: str) -> list[RoomDoc]:
    return await RoomDoc.find(RoomDoc.participant_ids == user_id).to_list()


async def unread(room_id: str, user_id: str, after: int) -> int:
    return await CountedMessage.find(
        CountedMessage.room_id == room_id, CountedMessage.seq > after, CountedMessage.sender_id != user_id
    ).count()


async def count_message(item: RoomItem) -> None:
    if item.kind == "message" and item.sender_id is not None:
        await CountedMessage(
            id=f"{item.room_id}:{item.seq}", room_id=item.room_id, seq=item.seq, sender_id=item.sender_id
        ).save()


DOCUMENTS = [RoomDoc, CountedMessage]
