"""Media's collection: one Upload aggregate per document."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from workers.media.domain import UNATTACHED_FOR, UploadState
from workers.runtime.store import StateDocument, state_document

UploadDoc = state_document(
    UploadState,
    "uploads",
    [
        IndexModel([("owner_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("item_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("created_at", ASCENDING), ("item_id", ASCENDING)]),
    ],
)
KEPT = {"$in": ["waiting", "ready"]}  # what counts against a quota


async def load(upload_id: str) -> StateDocument[UploadState] | None:
    return await UploadDoc.get(upload_id)


async def load_many(upload_ids: list[str]) -> list[StateDocument[UploadState]]:
    return await UploadDoc.find({"_id": {"$in": upload_ids}}).to_list()


async def stored_by(owner_id: str) -> int:
    """The bytes the owner's uploads take (declared ones for those not checked yet)."""
    found = await UploadDoc.find({"owner_id": owner_id, "status": KEPT}).to_list()
    return sum(doc.state().size for doc in found)


async def of_item(item_id: str) -> list[StateDocument[UploadState]]:
    return await UploadDoc.find({"item_id": item_id, "status": {"$ne": "deleted"}}).to_list()


async def unattached_before(now: datetime, limit: int = 100) -> list[StateDocument[UploadState]]:
    """Uploads nobody attached, made a day or more before ``now`` and not deleted yet."""
    found = await UploadDoc.find({"created_at": {"$lte": now - UNATTACHED_FOR}, "item_id": None}).to_list()
    return [doc for doc in found if doc.state().status != "deleted"][:limit]


DOCUMENTS = [UploadDoc]
