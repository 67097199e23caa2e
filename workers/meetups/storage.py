"""Meetups' collection: the Meetup aggregate, with its polls replica."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from contracts.shapes import Attendee, Poll
from workers.meetups.domain import MeetupState
from workers.runtime.store import Aggregate

STATE_FIELDS = [f.name for f in fields(MeetupState)]


class MeetupDoc(Aggregate):
    room_id: str
    name: str
    organizer_id: str
    location: str
    takes_place_on: datetime
    image_url: str | None = None
    created_at: datetime
    attendees: list[Attendee]
    polls: list[Poll] = []
    poll_versions: dict[str, int] = {}
    room_version: int = 0
    attendee_ids: list[str] = []  # stored for the query: who attends

    class Settings:
        name = "meetups"
        # Compound, not single-field: the stand-in's single-field index on an array breaks find().
        indexes = [
            IndexModel([("attendee_ids", ASCENDING), ("takes_place_on", ASCENDING)]),
            IndexModel([("room_id", ASCENDING), ("created_at", ASCENDING)]),
        ]

    def state(self) -> MeetupState:
        return MeetupState(**{name: getattr(self, name) for name in STATE_FIELDS})

    def update(self, state: MeetupState) -> MeetupDoc:
        for name in STATE_FIELDS:
            setattr(self, name, getattr(state, name))
        self.attendee_ids = state.attendee_ids
        return self

    @classmethod
    def new(cls, state: MeetupState) -> MeetupDoc:
        return cls(**vars(state), attendee_ids=state.attendee_ids)


async def load(meetup_id: str) -> MeetupDoc | None:
    return await MeetupDoc.get(meetup_id)


async def of_room(room_id: str) -> MeetupDoc | None:
    return await MeetupDoc.find_one(MeetupDoc.room_id == room_id)


async def attended_by(user_id: str) -> list[MeetupDoc]:
    return await MeetupDoc.find(MeetupDoc.attendee_ids == user_id).to_list()


DOCUMENTS = [MeetupDoc]
