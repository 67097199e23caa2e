"""Meetups' collections: the Meetup aggregate (with its polls replica), the meetups as queries and
calendars read them, each user's calendar feed, and the reminders due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from beanie import Document
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from contracts.shapes import Meetup
from workers.meetups.domain import CalendarOwner, MeetupState, Reminder
from workers.meetups.feeds import MAX_EVENTS, Listed
from workers.runtime.store import ConcurrencyError, StateDocument, state_document, write

# Who attends what is asked of MeetupView, so the aggregate needs no attendee index.
MeetupDoc = state_document(MeetupState, "meetups", [IndexModel([("room_id", ASCENDING), ("created_at", ASCENDING)])])
# A user's calendar feed, found by its token when a calendar app asks for it.
CalendarDoc = state_document(CalendarOwner, "calendars", [IndexModel([("token", ASCENDING)], unique=True)])


class MeetupView(Document):
    """A meetup as queries read it: a projection of meetups' own events, each carrying the whole meetup."""

    id: str  # type: ignore[assignment]  # a string key; Beanie declares id as PydanticObjectId | None
    meetup: Meetup
    attendee_ids: list[str]
    takes_place_on: datetime
    created_at: datetime
    version: int
    # Added in v1.2, for calendars: SEQUENCE, and when the meetup last changed (DTSTAMP).
    sequence: int = 0
    changed_at: datetime | None = None

    class Settings:
        name = "meetup_views"
        indexes = [IndexModel([("attendee_ids", ASCENDING), ("takes_place_on", ASCENDING)])]

    def listed(self) -> Listed:
        return Listed(self.meetup, self.version, self.sequence, self.changed_at or self.created_at)


async def put_view(meetup: Meetup, created_at: datetime, version: int, sequence: int, changed_at: datetime) -> None:
    """Keep ``meetup`` unless a later version is there (any order, any repeat)."""
    view = MeetupView(
        id=meetup.id,
        meetup=meetup,
        attendee_ids=[a.user_id for a in meetup.attendees],
        takes_place_on=meetup.takes_place_on,
        created_at=created_at,
        version=version,
        sequence=sequence,
        changed_at=changed_at,
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


async def listed_for(user_id: str, meetup_id: str | None = None) -> list[Listed]:
    """The meetups ``user_id`` attends (only ``meetup_id``, if given) as calendars show them: the
    latest ``MAX_EVENTS`` by start, in order of start."""
    query: dict[str, object] = {"attendee_ids": user_id}
    if meetup_id is not None:
        query["_id"] = meetup_id
    found = await MeetupView.find(query).to_list()
    latest = sorted(found, key=lambda v: (v.takes_place_on, v.created_at, v.id))[-MAX_EVENTS:]
    return [v.listed() for v in latest]


async def load(meetup_id: str) -> StateDocument[MeetupState] | None:
    return await MeetupDoc.get(meetup_id)


async def of_room(room_id: str) -> StateDocument[MeetupState] | None:
    return await MeetupDoc.find_one({"room_id": room_id})


# Calendar feeds -------------------------------------------------------------------------------


async def calendar_of(user_id: str) -> StateDocument[CalendarOwner] | None:
    return await CalendarDoc.get(user_id)


async def calendar_by_token(token: str) -> CalendarOwner | None:
    found = await CalendarDoc.find_one({"token": token})
    return found.state() if found else None


async def open_calendar(owner: CalendarOwner) -> CalendarOwner:
    """Store a user's first feed; if another request stored theirs first, that one."""
    try:
        await write(CalendarDoc.new(owner), [])
    except ConcurrencyError:
        found = await calendar_of(owner.id)
        assert found is not None
        return found.state()
    return owner


async def opted_out(user_ids: list[str]) -> set[str]:
    """Those of ``user_ids`` who turned reminders off (filtered here: the stand-in reads booleans back as 0/1)."""
    found = await CalendarDoc.find({"_id": {"$in": user_ids}}).to_list()
    return {doc.id for doc in found if not doc.reminders}


# Reminders due --------------------------------------------------------------------------------

Status = Literal["pending", "claimed", "done", "dropped"]
KEPT_AFTER_START = timedelta(days=7)


class DueReminder(Document):
    """One lead time of one meetup (``<meetup id>/<lead seconds>``), for its start ``starts_at``.

    ``pending`` until due; a replica ``claimed`` it (``claimed_by``, at ``claimed_at``) before handling
    it, and it is ``done`` once handled; ``dropped`` when the meetup no longer has it (cancelled).
    A claim left by a replica that stopped goes stale and is taken again (``claim_due``). Times are
    epoch seconds. ``version``: of the meetup event it was planned from.
    """

    id: str  # type: ignore[assignment]  # a string key; Beanie declares id as PydanticObjectId | None
    meetup_id: str
    lead_seconds: int
    starts_at: float
    due_at: float
    status: Status = "pending"
    claimed_by: str | None = None
    claimed_at: float = 0.0
    version: int = 0
    forget_at: datetime  # a week after the start, the database deletes it

    class Settings:
        name = "due_reminders"
        indexes = [
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel([("meetup_id", ASCENDING), ("lead_seconds", ASCENDING)]),
            IndexModel([("forget_at", ASCENDING)], expireAfterSeconds=0),
        ]

    def reminder(self) -> Reminder:
        return Reminder(self.meetup_id, self.lead_seconds, datetime.fromtimestamp(self.starts_at, UTC))


async def planned(meetup_id: str) -> list[DueReminder]:
    return await DueReminder.find({"meetup_id": meetup_id}).to_list()


async def replan(found: list[DueReminder], wanted: list[Reminder], version: int) -> None:
    """Make the meetup's due reminders (``found``) ``wanted``, planned from its event ``version``:
    nothing when a later event planned them already; those for the same start stay as they are
    (pending, claimed or done); new ones are pending, the others dropped. Each write is conditional
    on the document read: a concurrent planning makes it raise ``ConcurrencyError`` (plan again)."""
    if version <= max((doc.version for doc in found), default=0):
        return
    by_id = {doc.id: doc for doc in found}
    for reminder in wanted:
        new = _due(reminder, version)
        old = by_id.pop(new.id, None)
        if old is None or old.starts_at != new.starts_at or old.status == "dropped":
            await _put(new, old)
    for old in by_id.values():
        if old.status != "dropped":
            await _put(old.model_copy(update={"status": "dropped", "version": version}), old)


def _due(reminder: Reminder, version: int) -> DueReminder:
    return DueReminder(
        id=f"{reminder.meetup_id}/{reminder.lead_seconds}",
        meetup_id=reminder.meetup_id,
        lead_seconds=reminder.lead_seconds,
        starts_at=reminder.starts_at.timestamp(),
        due_at=reminder.due_at.timestamp(),
        version=version,
        forget_at=reminder.starts_at + KEPT_AFTER_START,
    )


async def _put(new: DueReminder, old: DueReminder | None) -> None:
    """Write ``new`` whole, if ``old`` (None: no document) is still what is stored."""
    collection = DueReminder.get_pymongo_collection()
    body = new.model_dump(by_alias=True, exclude={"revision_id"})
    try:
        if old is None:
            await collection.insert_one(body)
            return
        result = await collection.replace_one({"_id": old.id, "version": old.version}, body)
    except DuplicateKeyError:
        raise ConcurrencyError(new.id) from None
    if result.matched_count == 0:
        raise ConcurrencyError(new.id)


async def claim_due(now: float, claimer: str, stale_before: float) -> DueReminder | None:
    """Take one reminder that is due, or whose claim went stale (claimed before ``stale_before``),
    for ``claimer``, atomically: of replicas asking at once, one gets it."""
    collection = DueReminder.get_pymongo_collection()
    taking = {"$set": {"status": "claimed", "claimed_by": claimer, "claimed_at": now}}
    for query in (
        {"status": "pending", "due_at": {"$lte": now}},
        {"status": "claimed", "claimed_at": {"$lte": stale_before}},
    ):
        found = await collection.find_one_and_update(query, taking, return_document=ReturnDocument.AFTER)
        if found is not None:
            claimed: DueReminder = DueReminder.model_validate(found)
            return claimed
    return None


async def settle(due: DueReminder) -> None:
    """``due`` was handled: done, unless it was planned again or taken over meanwhile."""
    await DueReminder.get_pymongo_collection().update_one(
        {"_id": due.id, "status": "claimed", "claimed_by": due.claimed_by, "claimed_at": due.claimed_at},
        {"$set": {"status": "done"}},
    )


DOCUMENTS = [MeetupDoc, MeetupView, CalendarDoc, DueReminder]
