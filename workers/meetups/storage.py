"""Meetups' collection: the Meetup aggregate, with its polls replica."""

from __future__ import annotations

from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from contracts.shapes import Meetup
from workers.meetups.domain import MeetupState
from workers.runtime.store import StateDocument, state_document

# Who attends what is asked of MeetupView, so the aggregate needs no attendee index.
MeetupDoc = state_document(MeetupState, "meetups", [IndexModel([("room_id", ASCENDING), ("created_at", ASCENDING)])])


class MeetupView(Document):
    """A meetup as queries read it: a projection of meetups' own events, each carrying the whole meetup."""

    id: str  # type: ignore[assignment]  # a string key; Beanie declares id as PydanticObjectId | None
    meetup: Meetup
    attendee_ids: list[str]
    takes_place_on: datetime
    created_at: datetime
    version: int

    class Settings:
        name = "meetup_views"
        indexes = [IndexModel([("attendee_ids", ASCENDING), ("takes_place_on", ASCENDING)])]


async def put_view(meetup: Meetup, created_at: datetime, version: int) -> None:
    """Keep ``meetup`` unless a later version is there (any order, any repeat)."""
    view = MeetupView(
        id=meetup.id,
        meetup=meetup,
        attendee_ids=[a.user_id for a in meetup.attendees],
        takes_place_on=meetup.takes_place_on,
        created_at=created_at,
        version=version,
    )
    try:
        await MeetupView.get_pymongo_collection().replace_one(
            {"_id": meetup.id, "version": {"$lt": version}},
            view.model_dump(by_alias=True, exclude={"revision_id"}),
            upsert=True,
        )
    except DuplicateKeyError:
        pass  # this version or a later one is there


async def view(meetup_id: str) -> Meetup | None:
    found = await MeetupView.get(meetup_id)
    return found.meetup if found else None


async def views_of(user_id: str) -> list[Meetup]:
    """The meetups ``user_id`` attends, by time, ties oldest meetup first."""
    found = await MeetupView.find({"attendee_ids": user_id}).to_list()  # an array field matches any element
    return [v.meetup for v in sorted(found, key=lambda v: (v.takes_place_on, v.created_at, v.id))]


async def load(meetup_id: str) -> StateDocument[MeetupState] | None:
    return await MeetupDoc.get(meetup_id)


async def of_room(room_id: str) -> StateDocument[MeetupState] | None:
    return await MeetupDoc.find_one({"room_id": room_id})


DOCUMENTS = [MeetupDoc, MeetupView]
