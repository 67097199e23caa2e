"""Polls' collection: one Poll aggregate per document."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from contracts.shapes import PollStatus, PollType, Vote
from workers.polls.domain import PollState
from workers.runtime.store import Aggregate

STATE_FIELDS = [f.name for f in fields(PollState)]


class PollDoc(Aggregate):
    meetup_id: str
    room_id: str
    poll_type: PollType
    description: str
    choices: list[str]
    participant_ids: list[str]
    creator_id: str
    created_at: datetime
    votes: list[Vote] = []
    status: PollStatus = "open"
    winner_index: int | None = None

    class Settings:
        name = "polls"
        indexes = [IndexModel([("room_id", ASCENDING), ("status", ASCENDING)])]

    def state(self) -> PollState:
        return PollState(**{name: getattr(self, name) for name in STATE_FIELDS})

    def update(self, state: PollState) -> PollDoc:
        for name in STATE_FIELDS:
            setattr(self, name, getattr(state, name))
        return self

    @classmethod
    def new(cls, state: PollState) -> PollDoc:
        return cls(**vars(state))


async def load(poll_id: str) -> PollDoc | None:
    return await PollDoc.get(poll_id)


async def open_in_room(room_id: str) -> list[PollDoc]:
    return await PollDoc.find(PollDoc.room_id == room_id, PollDoc.status == "open").to_list()


DOCUMENTS = [PollDoc]
