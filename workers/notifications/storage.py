"""Notifications' collections: devices, the presence replica (what each process's presence mirror
loads), and the pushes already made per event.

None of these produce events, so they are plain documents written whole (insert, replace, delete),
never with ``$set``/``$push`` (which the Mongo stand-in stores differently).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from workers.notifications.domain import Device, Target
from workers.presence import PresenceDoc

CLAIMS_KEPT = timedelta(days=7)  # longer than any redelivery of an event


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


DOCUMENTS: list[type[Document]] = [DeviceDoc, PresenceDoc, PushClaim]
