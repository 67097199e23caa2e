"""Rooms' collection: the Room aggregate."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from workers.rooms.domain import RoomState
from workers.runtime.store import StateDocument, state_document

# Compound, not single-field: the stand-in's single-field index on an array breaks find().
RoomDoc = state_document(RoomState, "rooms", [IndexModel([("participant_ids", ASCENDING), ("created_at", ASCENDING)])])


async def load(room_id: str) -> tuple[StateDocument[RoomState] | None, RoomState | None]:
    doc = await RoomDoc.get(room_id)
    return doc, doc.state() if doc else None


async def room_ids_of(user_id: str) -> list[str]:
    return [doc.id for doc in await RoomDoc.find({"participant_ids": user_id}).to_list()]


DOCUMENTS = [RoomDoc]
