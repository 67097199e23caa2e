"""Rooms' collection: the Room aggregate."""

from __future__ import annotations

from beanie import Document
from pymongo import ASCENDING, IndexModel

from workers.rooms.domain import Allowance, RoomState
from workers.runtime.store import StateDocument, state_document, write

# Compound, not single-field: the stand-in's single-field index on an array breaks find().
RoomDoc = state_document(RoomState, "rooms", [IndexModel([("participant_ids", ASCENDING), ("created_at", ASCENDING)])])


AllowanceDoc = state_document(Allowance, "allowances")


async def allowance(user_id: str) -> tuple[StateDocument[Allowance], Allowance]:
    doc = await AllowanceDoc.get(user_id) or AllowanceDoc.new(Allowance(id=user_id))
    return doc, doc.state()


async def save_allowance(doc: StateDocument[Allowance], allowance: Allowance) -> None:
    """One conditional write; ``ConcurrencyError`` when another command of the user's wrote meanwhile
    (the command is decided again)."""
    await write(doc.with_state(allowance), [])


async def load(room_id: str) -> tuple[StateDocument[RoomState] | None, RoomState | None]:
    doc = await RoomDoc.get(room_id)
    return doc, doc.state() if doc else None


async def room_ids_of(user_id: str) -> list[str]:
    return [doc.id for doc in await RoomDoc.find({"participant_ids": user_id}).to_list()]


DOCUMENTS: list[type[Document]] = [RoomDoc, AllowanceDoc]
