"""Calendar files (RFC 5545), written with the ``icalendar`` library: a user's feed of meetups, or one
meetup ("Add to calendar"). No I/O: the handler loads what a file shows (``Listed``), this renders it.

A file's entity tag is a hash of everything it is made of (each meetup's id and version, its
``sequence``, the names shown, the addresses, this module's ``FORMAT``), so it is known before
rendering: an unchanged file answers 304 without being written again, and each process keeps the
latest files it rendered by tag (``RENDERED``), since calendar apps poll.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress

from contracts.requests import CalendarFeed
from contracts.shapes import Meetup, Rsvp, User
from workers.meetups.domain import CalendarOwner
from workers.runtime.context import Kept

FORMAT = "1"  # part of every tag: a change of what files say changes every tag
PRODID = "-//Boochat//Meetups//EN"
PARTSTAT: dict[Rsvp, str] = {"yes": "ACCEPTED", "no": "DECLINED", "maybe": "TENTATIVE", "not_responded": "NEEDS-ACTION"}
MAX_EVENTS = 1000  # a feed's meetups: the latest by start
KEPT_FILES = 64  # rendered files each process keeps, by tag
FIRST_YEAR, LAST_YEAR = 2020, 2045  # the years every VTIMEZONE covers at least


@dataclass(frozen=True)
class Listed:
    """A meetup as a calendar shows it: ``version`` of the snapshot, its ``sequence``, its last change."""

    meetup: Meetup
    version: int
    sequence: int
    changed_at: datetime


@dataclass(frozen=True)
class Audience:
    """Whose file it is and what it links to: the owner, each organizer by id, the web client."""

    owner: User
    organizers: dict[str, User]
    public_base: str


@dataclass(frozen=True)
class File:
    etag: str
    body: str | None


class Rendered:
    """The files this process rendered last, by tag (least recently used forgotten first)."""

    def __init__(self, size: int = KEPT_FILES) -> None:
        self._files: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def get(self, etag: str) -> str | None:
        body = self._files.get(etag)
        if body is not None:
            self._files.move_to_end(etag)
        return body

    def put(self, etag: str, body: str) -> None:
        self._files[etag] = body
        self._files.move_to_end(etag)
        while len(self._files) > self._size:
            self._files.popitem(last=False)


RENDERED: Kept[Rendered] = Kept("calendar_files", Rendered)


def etag(listed: list[Listed], audience: Audience, single: bool) -> str:
    """The strong entity tag of the file of ``listed`` for ``audience``."""
    names = {i: u.name for i, u in audience.organizers.items()}
    made_of = [FORMAT, single, audience.public_base, audience.owner.id, audience.owner.name, names]
    made_of += [[item.meetup.id, item.version, item.sequence] for item in listed]
    digest = hashlib.sha256(json.dumps(made_of, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:32]}"'


def answer(listed: list[Listed], audience: Audience, single: bool, have: list[str], rendered: Rendered) -> File:
    """The file, with no body when its tag is one the client ``have``s (HTTP 304); taken from
    ``rendered`` when this process wrote it already."""
    tag = etag(listed, audience, single)
    if tag in have:
        return File(tag, None)
    if (body := rendered.get(tag)) is None:
        body = render(listed, audience, single)
        rendered.put(tag, body)
    return File(tag, body)


def addresses(public_base: str, owner: CalendarOwner) -> CalendarFeed:
    """Where the owner's feed is, over ``https`` (or ``http``) and as ``webcal``."""
    url = f"{public_base}/calendar/{owner.token}.ics"
    return CalendarFeed(url=url, webcal_url="webcal://" + url.partition("://")[2], reminders=owner.reminders)


def render(listed: list[Listed], audience: Audience, single: bool) -> str:
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    if not single:
        calendar.add("X-WR-CALNAME", "Boochat meetups")
    for item in listed:
        calendar.add_component(_event(item, audience))
    for zone in sorted({item.meetup.time_zone for item in listed} - {"UTC"}):
        years = [t.year for item in listed if item.meetup.time_zone == zone for t in _times(item.meetup)]
        calendar.subcomponents.insert(0, _time_zone(zone, min(FIRST_YEAR, *years), max(LAST_YEAR, *years)))
    text: str = calendar.to_ical().decode()
    return text


def _event(item: Listed, audience: Audience) -> Event:
    meetup, owner = item.meetup, audience.owner
    zone = UTC if meetup.time_zone == "UTC" else ZoneInfo(meetup.time_zone)
    starts, ends = (t.astimezone(zone) for t in _times(meetup))
    event = Event()
    event.add("UID", f"{meetup.id}@boochat")
    event.add("DTSTAMP", item.changed_at.astimezone(UTC))
    event.add("SEQUENCE", item.sequence)
    event.add("SUMMARY", meetup.name)
    event.add("LOCATION", meetup.location)
    event.add("DTSTART", starts)
    event.add("DTEND", ends)
    event.add("STATUS", "CANCELLED" if meetup.cancelled_at is not None else "CONFIRMED")
    event.add("URL", f"{audience.public_base}/#/room/{meetup.room_id}/meetup")
    organizer = audience.organizers.get(meetup.organizer_id)
    event.add("ORGANIZER", _address(meetup.organizer_id, organizer.name if organizer else ""))
    rsvp: Rsvp = next((a.rsvp for a in meetup.attendees if a.user_id == owner.id), "not_responded")
    attendee = _address(owner.id, owner.name)
    attendee.params["PARTSTAT"] = PARTSTAT[rsvp]
    event.add("ATTENDEE", attendee)
    return event


def _times(meetup: Meetup) -> tuple[datetime, datetime]:
    return meetup.takes_place_on, meetup.ends_on or meetup.takes_place_on


def _address(user_id: str, name: str) -> vCalAddress:
    """An opaque, stable address of a user (no email is ever shown), named ``CN``. A parameter value
    cannot hold a double quote but in RFC 6868's encoding, which few calendars read: an apostrophe
    stands for it."""
    address = vCalAddress(uuid.uuid5(uuid.NAMESPACE_URL, f"boochat:user:{user_id}").urn)
    if name:
        address.params["CN"] = name.replace('"', "'")
    return address


@lru_cache(maxsize=256)
def _time_zone(zone: str, first_year: int, last_year: int) -> Timezone:
    """The VTIMEZONE of ``zone`` from ``first_year`` to ``last_year`` (working it out is slow). The
    same years in every file, unless a meetup falls outside them: some calendars keep the first
    VTIMEZONE they saw of a TZID for every later file. One RDATE per transition: some parsers
    (vobject) misread a list of them in one RDATE."""
    described = Timezone.from_tzid(zone, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1))
    for part in described.subcomponents:
        if (listed := part.pop("RDATE", None)) is not None:
            for when in listed.dts:
                part.add("RDATE", when.dt)
    return described
