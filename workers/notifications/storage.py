"""Notifications' collections: devices, the presence replica (what each process's presence mirror
loads), the notification levels replica (what each process's levels mirror loads), the items
deleted (their pushes are withdrawn), and the pushes already made per event.

None of these produce events, so they are plain documents written whole (insert, replace, delete),
never with ``$set``/``$push`` (which the Mongo stand-in stores differently).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts.shapes import NotificationLevel
from workers.notifications.domain import Device, Level, Levels, Push, Target
from workers.presence import PresenceDoc
from workers.runtime.store import ConcurrencyError

CLAIMS_KEPT = timedelta(days=7)  # longer than any redelivery of an event
DELETIONS_KEPT = CLAIMS_KEPT  # a push still pending after that long is never sent anyway


class DeviceDoc(Document):
    id: str  # type: ignore[assignment]  # Target.id, a string; Beanie declares id as PydanticObjectId | None
    kind: str
    value: str
    user_id: str
    platform: str
    registered_at: datetime

    class Settings:
        name = "devices"
        indexes = [IndexModel([("user_id", ASCENDING), ("registered_at", ASCENDING)])]

    def state(self) -> Device:
        return Device(Target(self.kind, self.value), self.user_id, self.platform, self.registered_at)


class PushClaim(Document):
    """``<event_id>:<Target.id>``: that event's push to that target was made (or is being made).

    Inserted before sending: the unique id makes one replica, once, the sender of each push.
    """

    id: str  # type: ignore[assignment]  # a string key; Beanie declares id as PydanticObjectId | None
    event_id: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    class Settings:
        name = "pushes"
        indexes = [
            IndexModel([("event_id", ASCENDING), ("at", ASCENDING)]),
            IndexModel([("at", ASCENDING)], expireAfterSeconds=int(CLAIMS_KEPT.total_seconds())),
        ]


class LevelDoc(Document):
    """A user's notification level in a room, written whole (insert, or replace at the version
    read); ``stored_at``: when (epoch seconds), so a mirror's reload reads only what changed since
    its last one. Every level set is kept, ``all`` too: it overrides an older one."""

    id: str  # type: ignore[assignment]  # level_id(room_id, user_id); Beanie declares an ObjectId
    room_id: str
    user_id: str
    level: NotificationLevel
    version: int
    stored_at: float = 0.0

    class Settings:
        name = "levels"
        indexes = [IndexModel([("stored_at", ASCENDING)])]

    def state(self) -> Level:
        return Level(self.room_id, self.user_id, self.level, self.version)


class DeletionDoc(Document):
    """An item deleted (its id): a push of it not made yet is not made."""

    id: str  # type: ignore[assignment]  # the item's id
    room_id: str
    deleted_at: datetime

    class Settings:
        name = "deletions"
        indexes = [IndexModel([("deleted_at", ASCENDING)], expireAfterSeconds=int(DELETIONS_KEPT.total_seconds()))]


# Devices --------------------------------------------------------------------------------------


async def device(target: Target) -> Device | None:
    doc = await DeviceDoc.get(target.id)
    return doc.state() if doc else None


async def save_device(device: Device) -> None:
    await DeviceDoc(
        id=device.target.id,
        kind=device.target.kind,
        value=device.target.value,
        user_id=device.user_id,
        platform=device.platform,
        registered_at=device.registered_at,
    ).save()


async def delete_device(target: Target, user_id: str) -> None:
    """Delete ``target`` if ``user_id`` still owns it (it may have moved to someone else meanwhile)."""
    await DeviceDoc.get_pymongo_collection().delete_one({"_id": target.id, "user_id": user_id})


async def devices_of(user_ids: list[str]) -> list[Device]:
    if not user_ids:
        return []
    return [doc.state() for doc in await DeviceDoc.find({"user_id": {"$in": user_ids}}).to_list()]


# Claims ---------------------------------------------------------------------------------------


def claim_id(event_id: str, target: Target) -> str:
    return f"{event_id}:{target.id}"


async def claimed(event_id: str) -> set[str]:
    """Target ids this event's pushes already went to."""
    found = await PushClaim.find({"event_id": event_id}).to_list()
    return {claim.id.split(":", 1)[1] for claim in found}


async def claim(event_id: str, target: Target) -> bool:
    """Take the right to push ``event_id`` to ``target``; False if it was taken before."""
    try:
        await PushClaim(id=claim_id(event_id, target), event_id=event_id).insert()
    except DuplicateKeyError:
        return False
    return True


# Levels ---------------------------------------------------------------------------------------


def level_id(room_id: str, user_id: str) -> str:
    return f"{room_id}/{user_id}"  # room ids never hold a slash (uuid hex), so the key is unambiguous


async def level(room_id: str, user_id: str) -> Level | None:
    doc = await LevelDoc.get(level_id(room_id, user_id))
    return doc.state() if doc else None


async def stored_levels(since: float | None) -> Levels:
    """The levels stored at or after ``since`` (epoch seconds; None: all of them)."""
    query = {} if since is None else {"stored_at": {"$gte": since}}
    return {doc.state().key: doc.state() for doc in await LevelDoc.find(query).to_list()}


async def save_level(new: Level, read: Level | None) -> None:
    """Write ``new`` if the stored level is still ``read``; else ``ConcurrencyError`` (decide again)."""
    body = {
        "_id": level_id(new.room_id, new.user_id),
        "room_id": new.room_id,
        "user_id": new.user_id,
        "level": new.level,
        "version": new.version,
        "stored_at": time.time(),
    }
    collection = LevelDoc.get_pymongo_collection()
    if read is None:
        try:
            await collection.insert_one(body)
        except DuplicateKeyError:
            raise ConcurrencyError(body["_id"]) from None
        return
    result = await collection.replace_one({"_id": body["_id"], "version": read.version}, body)
    if result.matched_count == 0:
        raise ConcurrencyError(body["_id"])


# Deletions ------------------------------------------------------------------------------------


async def save_deletion(item_id: str, room_id: str, at: datetime) -> None:
    """Idempotent: a deletion recorded already stays as it was."""
    try:
        await DeletionDoc(id=item_id, room_id=room_id, deleted_at=at).insert()
    except DuplicateKeyError:
        pass


async def deleted(item_ids: list[str]) -> set[str]:
    """Those of ``item_ids`` that were deleted."""
    if not item_ids:
        return set()
    return {doc.id for doc in await DeletionDoc.find({"_id": {"$in": item_ids}}).to_list()}


async def withdrawn(push: Push) -> bool:
    """Whether ``push``'s item was deleted since it was planned (asked before each retry)."""
    return bool(await deleted([push.item_id]))


DOCUMENTS: list[type[Document]] = [DeviceDoc, PresenceDoc, LevelDoc, DeletionDoc, PushClaim]
