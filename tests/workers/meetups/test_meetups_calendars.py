"""The meetups worker's calendars, cancelling and reminders, through the real pipeline on the Mongo
stand-in (other workers faked); time is the runtime's ``now``, set by each test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
import vobject
from support.handlers import Harness, event, harness, replica

from contracts.common import format_time
from contracts.envelope import AnyEvent, Command
from contracts.events import PollClosed, PollCreated, RoomInfo
from contracts.internal import OpenedRoom
from contracts.routing import user_key
from contracts.shapes import Poll, User, Vote
from workers.meetups import handlers, storage
from workers.meetups.app import WORKER

STARTS = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
REMINDER_AT = STARTS - timedelta(hours=2)  # the 2 h reminder of the default lead times


def open_room(command: Command) -> dict[str, Any]:
    """The rooms worker's answer to open_meetup_room."""
    data = command.data
    room = RoomInfo(
        id=data["room_id"],
        name=data["name"],
        image_url=None,
        participant_ids=[command.user_id, *data["participant_ids"]],
        created_by=command.user_id,
        created_at=datetime.now(UTC),
        meetup_id=data["meetup_id"],
    )
    return OpenedRoom(room=room).model_dump(mode="json")


@pytest.fixture
async def meetups(mongo_url: str) -> Harness:
    loaded = await harness(WORKER, mongo_url)
    loaded.rpc.answer("rooms", "open_meetup_room", open_room)
    return loaded


async def create(meetups: Harness, organizer: User, *others: User, starts: datetime = STARTS, **more: Any) -> dict:
    data = {
        "name": "Picnic",
        "location": "Park",
        "takes_place_on": format_time(starts),
        "attendee_ids": [u.id for u in others],
    }
    return (await meetups.ok("create_meetup", organizer, data | more))["meetup"]


async def plan(meetups: Harness) -> None:
    """Each meetup event so far reaches ``plan_reminders``, as its queue would deliver it."""
    for recorded in [e for e in meetups.outbox.events if e["type"] in handlers.MEETUP_EVENTS]:
        await meetups.react("plan_reminders", AnyEvent.model_validate(recorded))


async def scan(meetups: Harness, at: datetime) -> None:
    """One look for due reminders, at ``at``."""
    meetups.runtime.now = lambda: at  # type: ignore[method-assign]
    await handlers.send_reminders(meetups.runtime)
    await meetups.drain()


def reminders(*harnesses: Harness) -> list[tuple[str, str, int, list[str]]]:
    """Every meetup.reminder_due published: (meetup, kind, lead, users)."""
    return [
        (e["aggregate_id"], e["payload"]["kind"], e["payload"]["lead_seconds"], e["payload"]["user_ids"])
        for h in harnesses
        for e in h.events("meetup.reminder_due")
    ]


async def feed_of(meetups: Harness, user: User) -> str:
    return (await meetups.ok("get_calendar_feed", user))["url"].rsplit("/", 1)[1].removesuffix(".ics")


# Cancelling -----------------------------------------------------------------------------------


async def test_only_the_organizer_cancels_once(meetups):
    """cancel_meetup: forbidden for an attendee, conflict the second time; the same id answers ok again."""
    ann, bob = meetups.add_users("Ann", "Bob")
    meetup = await create(meetups, ann, bob)
    assert await meetups.error("cancel_meetup", bob, {"meetup_id": meetup["id"]}) == "forbidden"
    assert await meetups.ok("cancel_meetup", ann, {"meetup_id": meetup["id"]}, id="c1") == {}
    assert await meetups.ok("cancel_meetup", ann, {"meetup_id": meetup["id"]}, id="c1") == {}
    assert await meetups.error("cancel_meetup", ann, {"meetup_id": meetup["id"]}) == "conflict"
    [cancelled] = meetups.events("meetup.cancelled")
    assert cancelled["payload"]["cancelled_by_name"] == "Ann" and cancelled["payload"]["sequence"] == 1
    told = meetups.sent("meetup.updated")
    assert {d["key"] for d in told} == {user_key(ann.id), user_key(bob.id)}
    assert all(d["data"]["meetup"]["cancelled_at"] for d in told)
    got = (await meetups.ok("get_meetup", bob, {"meetup_id": meetup["id"]}))["meetup"]
    assert got["cancelled_at"] and got["ends_on"] == format_time(STARTS + timedelta(hours=2))


@pytest.mark.parametrize(
    "bad", [{"ends_on": format_time(STARTS - timedelta(minutes=1))}, {"time_zone": "Nowhere/Land"}]
)
async def test_a_refused_meetup_stores_nothing(meetups, bad):
    """An end before the start, an unknown time zone: bad_request naming the field; no room, no meetup."""
    [ann] = meetups.add_users("Ann")
    data = {"name": "Picnic", "location": "Park", "takes_place_on": format_time(STARTS), "attendee_ids": []}
    reply = await meetups.command("create_meetup", ann, data | bad)
    assert reply.error is not None and reply.error.code == "bad_request"
    assert list(reply.error.details) == [f"data.{next(iter(bad))}"]
    assert [c for c in meetups.rpc.calls if c[1].type == "open_meetup_room"] == []
    assert await storage.MeetupDoc.find_all().to_list() == [] and meetups.outbox.events == []


# Calendar feeds -------------------------------------------------------------------------------


async def test_the_feed_address_is_stable_until_reset(meetups):
    """get_calendar_feed answers the same address; reset_calendar_feed a new one (the same for a
    retried id); the old token is not found any more, exactly like one never issued."""
    [ann] = meetups.add_users("Ann")
    first = await meetups.ok("get_calendar_feed", ann)
    assert await meetups.ok("get_calendar_feed", ann) == first
    assert first["url"].startswith("http://") and first["webcal_url"].startswith("webcal://")
    assert first["reminders"] is True
    old = await feed_of(meetups, ann)
    reset = await meetups.ok("reset_calendar_feed", ann, id="r1")
    assert await meetups.ok("reset_calendar_feed", ann, id="r1") == reset != first
    assert await meetups.ok("get_calendar_feed", ann) == reset
    assert await meetups.error("calendar_file", "-", {"token": old}) == "not_found"
    assert await meetups.error("calendar_file", "-", {"token": "never-issued-token-0123456789"}) == "not_found"
    assert (await meetups.ok("calendar_file", "-", {"token": await feed_of(meetups, ann)}))["body"]


async def test_a_feed_shows_each_meetup_attended_and_answers_304_when_unchanged(meetups):
    """One VEVENT per meetup the user attends, read back by two parsers; the same tag again: no body;
    an answer changes the tag; one meetup alone as a file; another's meetup: not found."""
    ann, bob, cy = meetups.add_users("Ann", "Bob", "Cy")
    first = await create(meetups, ann, bob, time_zone="Europe/Berlin")
    second = await create(meetups, ann, bob, starts=STARTS + timedelta(days=1))
    theirs = await create(meetups, ann, cy)
    token = await feed_of(meetups, bob)
    file = await meetups.ok("calendar_file", "-", {"token": token})
    events = icalendar.Calendar.from_ical(file["body"]).events
    assert [str(e["UID"]) for e in events] == [f"{first['id']}@boochat", f"{second['id']}@boochat"]
    assert [e["ATTENDEE"].params["PARTSTAT"] for e in events] == ["NEEDS-ACTION"] * 2
    assert events[0]["ORGANIZER"].params["CN"] == "Ann" and events[0].start == STARTS
    assert len(vobject.readOne(file["body"]).vevent_list) == 2
    same = await meetups.ok("calendar_file", "-", {"token": token, "if_none_match": [file["etag"]]})
    assert same == {"etag": file["etag"], "body": None}
    await meetups.ok("change_rsvp", bob, {"meetup_id": first["id"], "rsvp": "yes"})
    changed = await meetups.ok("calendar_file", "-", {"token": token, "if_none_match": [file["etag"]]})
    assert changed["etag"] != file["etag"] and "PARTSTAT=ACCEPTED" in changed["body"]
    one = await meetups.ok("calendar_file", "-", {"token": token, "meetup_id": second["id"]})
    assert [str(e["UID"]) for e in icalendar.Calendar.from_ical(one["body"]).events] == [f"{second['id']}@boochat"]
    refused = {"token": token, "meetup_id": theirs["id"]}
    assert await meetups.error("calendar_file", "-", refused) == "not_found"


async def test_a_cancelled_meetup_stays_in_the_feed_marked_cancelled(meetups):
    """STATUS:CANCELLED, and a higher SEQUENCE, so calendars update the entry."""
    ann, bob = meetups.add_users("Ann", "Bob")
    meetup = await create(meetups, ann, bob)
    token = await feed_of(meetups, bob)
    before = icalendar.Calendar.from_ical((await meetups.ok("calendar_file", "-", {"token": token}))["body"])
    await meetups.ok("cancel_meetup", ann, {"meetup_id": meetup["id"]})
    after = icalendar.Calendar.from_ical((await meetups.ok("calendar_file", "-", {"token": token}))["body"])
    assert [(str(e["STATUS"]), e["SEQUENCE"]) for e in (*before.events, *after.events)] == [
        ("CONFIRMED", 0),
        ("CANCELLED", 1),
    ]


# Reminders ------------------------------------------------------------------------------------


async def test_a_reminder_goes_once_to_those_going_and_the_nudge_to_the_others(meetups):
    """At 24 h: a reminder to yes and maybe, a nudge to not answered; at 2 h, the reminder alone;
    each once, with a meetup.reminder to each user; nothing before its time."""
    ann, bob, cy, dee = meetups.add_users("Ann", "Bob", "Cy", "Dee")
    meetup = await create(meetups, ann, bob, cy, dee)
    await meetups.ok("change_rsvp", bob, {"meetup_id": meetup["id"], "rsvp": "maybe"})
    await meetups.ok("change_rsvp", cy, {"meetup_id": meetup["id"], "rsvp": "no"})
    await plan(meetups)
    await scan(meetups, STARTS - timedelta(hours=24, seconds=1))
    assert reminders(meetups) == []
    await scan(meetups, STARTS - timedelta(hours=24))
    await scan(meetups, STARTS - timedelta(hours=23))
    assert reminders(meetups) == [
        (meetup["id"], "reminder", 86400, [ann.id, bob.id]),
        (meetup["id"], "nudge", 86400, [dee.id]),
    ]
    await scan(meetups, REMINDER_AT + timedelta(seconds=30))
    assert reminders(meetups)[2:] == [(meetup["id"], "reminder", 7200, [ann.id, bob.id])]
    sent = [(d["key"], d["data"]["kind"], d["data"]["lead_seconds"]) for d in meetups.sent("meetup.reminder")]
    assert sorted(sent) == sorted(
        [
            (user_key(ann.id), "reminder", 86400),
            (user_key(bob.id), "reminder", 86400),
            (user_key(dee.id), "nudge", 86400),
            (user_key(ann.id), "reminder", 7200),
            (user_key(bob.id), "reminder", 7200),
        ]
    )
    assert {doc.status for doc in await storage.planned(meetup["id"])} == {"done"}


async def test_two_replicas_send_each_reminder_once(meetups):
    """Both replicas look at the same moment, again and again: every reminder goes out once."""
    other = replica(meetups)
    ann, bob = meetups.add_users("Ann", "Bob")
    created = [await create(meetups, ann, bob) for _ in range(8)]
    await plan(meetups)
    for seconds in range(3):
        at = REMINDER_AT + timedelta(seconds=seconds)
        await asyncio.gather(scan(meetups, at), scan(other, at))
    sent = reminders(meetups, other)
    assert sorted(sent) == sorted((m["id"], "reminder", 7200, [ann.id]) for m in created)
    assert reminders(meetups) and reminders(other), "both replicas took some"


async def test_a_claim_left_by_a_stopped_replica_is_taken_over_once_stale(meetups):
    """A replica claimed the due reminders and died: the others leave them while the claims are
    fresh, then take them over and send (the 2 h one, the 24 h one being late) once."""
    ann, bob = meetups.add_users("Ann", "Bob")
    meetup = await create(meetups, ann, bob)
    await plan(meetups)
    while await storage.claim_due(REMINDER_AT.timestamp(), "dead-replica", 0.0) is not None:
        pass  # it took every reminder due (the 24 h one and the 2 h one)
    assert {doc.status for doc in await storage.planned(meetup["id"])} == {"claimed"}
    await scan(meetups, REMINDER_AT + timedelta(seconds=handlers.STALE_CLAIM - 1))
    assert reminders(meetups) == []
    await scan(meetups, REMINDER_AT + timedelta(seconds=handlers.STALE_CLAIM))
    await scan(meetups, REMINDER_AT + timedelta(seconds=handlers.STALE_CLAIM * 3))
    assert reminders(meetups) == [(meetup["id"], "reminder", 7200, [ann.id])]


async def test_a_replica_that_stopped_after_sending_is_not_repeated(meetups):
    """Sent (committed) but not settled when the replica died: the one taking it over sends nothing more."""
    ann, bob = meetups.add_users("Ann", "Bob")
    meetup = await create(meetups, ann, bob)
    await plan(meetups)
    meetups.runtime.now = lambda: REMINDER_AT  # type: ignore[method-assign]
    claimed = await storage.claim_due(REMINDER_AT.timestamp(), "dying-replica", 0.0)
    assert claimed is not None
    await handlers.remind(meetups.runtime, claimed)  # then it died: never settled
    await meetups.drain()
    await scan(meetups, REMINDER_AT + timedelta(seconds=handlers.STALE_CLAIM + 1))
    assert reminders(meetups) == [(meetup["id"], "reminder", 7200, [ann.id])]
    assert {doc.status for doc in await storage.planned(meetup["id"]) if doc.lead_seconds == 7200} == {"done"}


def closed_reschedule(meetup: dict, to: datetime, voter: str) -> tuple[Poll, Poll]:
    opened = Poll(
        id=uuid.uuid4().hex,
        meetup_id=meetup["id"],
        poll_type="reschedule",
        description="Later?",
        choices=[format_time(to), format_time(to + timedelta(days=1))],
        participant_ids=[voter],
        votes=[],
        status="open",
        creator_id=voter,
        created_at=datetime.now(UTC),
        winner_index=None,
    )
    closed = opened.model_copy(
        update={"votes": [Vote(user_id=voter, choice_index=0)], "status": "closed", "winner_index": 0}
    )
    return opened, closed


async def test_a_moved_meetup_is_reminded_at_its_new_time_and_a_cancelled_one_not_at_all(meetups):
    """A reschedule poll moves the reminders with the meetup (and its length); cancelling drops them."""
    ann, bob = meetups.add_users("Ann", "Bob")
    moving, cancelled = await create(meetups, ann, bob), await create(meetups, ann, bob)
    await plan(meetups)
    later = STARTS + timedelta(days=3)
    opened, closed = closed_reschedule(moving, later, ann.id)
    room = moving["room_id"]
    await meetups.react("track_poll", event("poll.created", PollCreated(poll=opened, room_id=room, creator_name="Ann")))
    await meetups.react(
        "track_poll", event("poll.closed", PollClosed(poll=closed, room_id=room, winner="x"), version=2)
    )
    moved = (await meetups.ok("get_meetup", ann, {"meetup_id": moving["id"]}))["meetup"]
    assert moved["ends_on"] == format_time(later + timedelta(hours=2))
    await meetups.ok("cancel_meetup", ann, {"meetup_id": cancelled["id"]})
    await plan(meetups)
    await scan(meetups, REMINDER_AT)
    assert reminders(meetups) == []
    await scan(meetups, later - timedelta(hours=2))
    assert reminders(meetups) == [(moving["id"], "reminder", 7200, [ann.id])]
    assert {doc.status for doc in await storage.planned(cancelled["id"])} == {"dropped"}


async def test_a_user_who_turned_reminders_off_gets_none(meetups):
    """set_reminders false: left out of reminders and nudges; on again: back."""
    ann, bob, cy = meetups.add_users("Ann", "Bob", "Cy")
    meetup = await create(meetups, ann, bob, cy)
    await meetups.ok("change_rsvp", bob, {"meetup_id": meetup["id"], "rsvp": "yes"})
    await meetups.ok("set_reminders", bob, {"enabled": False})
    await meetups.ok("set_reminders", cy, {"enabled": False})
    assert (await meetups.ok("get_calendar_feed", bob))["reminders"] is False
    await plan(meetups)
    await scan(meetups, STARTS - timedelta(hours=24))
    assert reminders(meetups) == [(meetup["id"], "reminder", 86400, [ann.id])]
    await meetups.ok("set_reminders", bob, {"enabled": True})
    await scan(meetups, REMINDER_AT)
    assert reminders(meetups)[1:] == [(meetup["id"], "reminder", 7200, [ann.id, bob.id])]
