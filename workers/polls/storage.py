"""Polls' collection: one Poll aggregate per document."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from workers.polls.domain import PollState
from workers.runtime.store import StateDocument, state_document

PollDoc = state_document(PollState, "polls", [IndexModel([("room_id", ASCENDING), ("status", ASCENDING)])])


async def load(poll_id: str) -> StateDocument[PollState] | None:
    return await PollDoc.get(poll_id)


async def open_in_room(room_id: str) -> list[StateDocument[PollState]]:
    return await PollDoc.find({"room_id": room_id, "status": "open"}).to_list()


DOCUMENTS = [PollDoc]
