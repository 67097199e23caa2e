"""Rooms' collections: the Room aggregate, and the messages it counts for unread counts."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts.shapes import RoomItem
from workers.rooms.domain import RoomState
from workers.runtime.store import Aggregate

ACTIVITY_FIELDS = ("last_seq", "last_item")
STATE_FIELDS = [f.name for f in fields(RoomState) if f.name not in ACTIVITY_FIELDS]


class RoomDoc(Aggregate):
    name: str
    image_url: str | None = None
    participant_ids: list[str]
    created_by: str
    created_at: datetime
    meetup_id: str | None = None
    read_marks: dict[str, int] = {}

    class Settings:
        name = "rooms"
        # Compound, not single-field: the stand-in's single-field index on an array breaks find().
        indexes = [IndexModel([("participant_ids", ASCENDING), ("created_at", ASCENDING)])]

    def state(self, activity: RoomActivity | None = None) -> RoomState:
        state = RoomState(**{name: getattr(self, name) for name in STATE_FIELDS})
        if activity is not None:
            state.last_seq, state.last_item = activity.last_seq, activity.last_item
        return state

    def update(self, state: RoomState) -> RoomDoc:
        for name in STATE_FIELDS:
            setattr(self, name, getattr(state, name))
        return self

    @classmethod
    def new(cls, state: RoomState) -> RoomDoc:
        return cls(**{name: getattr(state, name) for name in STATE_FIELDS})


class RoomActivity(Document):
    """A room's latest item, from messaging's ``room.item_added`` (a projection)."""

    id: str  # type: ignore[assignment]  # the room id
    last_seq: int = 0
    last_item: RoomItem | None = None

    class Settings:
        name = "activity"


class CountedMessage(Document):
    """A message of a room, by sender: what unread counts count."""

    id: str  # type: ignore[assignment]  # <room_id>:<seq>
    room_id: str
    seq: int
    sender_id: str

    class Settings:
        name = "messages"
        indexes = [IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)])]


async def load(room_id: str) -> tuple[RoomDoc | None, RoomState | None]:
    """The room's document and its state, activity included."""
    doc = await RoomDoc.get(room_id)
    if doc is None:
        return None, None
    return doc, doc.state(await RoomActivity.get(room_id))


async def rooms_of(user_id: str) -> list[RoomState]:
    docs = await RoomDoc.find(RoomDoc.participant_ids == user_id).to_list()
    activities = await RoomActivity.find({"_id": {"$in": [doc.id for doc in docs]}}).to_list()
    by_room = {activity.id: activity for activity in activities}
    return [doc.state(by_room.get(doc.id)) for doc in docs]


async def record_activity(item: RoomItem) -> None:
    """Keep ``item`` as the room's last one unless a later one is there (any order, any repeat)."""
    body = RoomActivity(id=item.room_id, last_seq=item.seq, last_item=item).model_dump(
        by_alias=True, exclude={"revision_id"}
    )
    try:
        await RoomActivity.get_pymongo_collection().replace_one(
            {"_id": item.room_id, "last_seq": {"$lt": item.seq}}, body, upsert=True
        )
    except DuplicateKeyError:
        pass  # the room already shows this item or a later one


async def unread(room_id: str, user_id: str, after: int) -> int:
    return await CountedMessage.find(
        CountedMessage.room_id == room_id, CountedMessage.seq > after, CountedMessage.sender_id != user_id
    ).count()


async def count_message(item: RoomItem) -> None:
    if item.kind == "message" and item.sender_id is not None:
        await CountedMessage(
            id=f"{item.room_id}:{item.seq}", room_id=item.room_id, seq=item.seq, sender_id=item.sender_id
        ).save()


DOCUMENTS = [RoomDoc, RoomActivity, CountedMessage]
