"""Calendar files: read back by icalendar and by vobject, an independent parser; RFC 5545's
syntax checked on the raw text (CRLF, folding at 75 octets, escaping, times and their VTIMEZONE)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import icalendar
import vobject

from contracts.shapes import Attendee, Meetup, User
from workers.meetups import feeds

STARTS = datetime(2030, 3, 31, 17, 0, tzinfo=UTC)  # the day Berlin moves to summer time
ANN = User(id="ann", name="Ann")
BOB = User(id="bob", name='Bob, the "Builder"; Esq.')
SHOWN_BOB = "Bob, the 'Builder'; Esq."  # a parameter cannot hold a double quote (RFC 5545)
BASE = "https://chat.example.com"


def meetup(
    meetup_id: str = "m1",
    name: str = "Picnic, with friends; bring food",
    location: str = "Park; north gate, by the lake",
    time_zone: str = "UTC",
    rsvp: str = "maybe",
    cancelled: bool = False,
    starts: datetime = STARTS,
) -> Meetup:
    return Meetup(
        id=meetup_id,
        room_id=f"room-{meetup_id}",
        name=name,
        organizer_id="ann",
        location=location,
        takes_place_on=starts,
        image_url=None,
        attendees=[Attendee(user_id="ann", rsvp="yes"), Attendee(user_id="bob", rsvp=rsvp)],
        polls=[],
        alerts=[],
        ends_on=starts + timedelta(hours=3),
        time_zone=time_zone,
        cancelled_at=STARTS - timedelta(days=1) if cancelled else None,
    )


def listed(*meetups: Meetup, version: int = 1, sequence: int = 0) -> list[feeds.Listed]:
    return [feeds.Listed(m, version, sequence, STARTS - timedelta(days=2)) for m in meetups]


AUDIENCE = feeds.Audience(BOB, {"ann": ANN}, BASE)


def check_syntax(text: str) -> None:
    """CRLF line ends only; every physical line at most 75 octets; continuation lines start with a space."""
    raw = text.encode()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines), max(lines, key=len)
    assert lines[0] == b"BEGIN:VCALENDAR" and lines[-1] == b"END:VCALENDAR"


def unfolded(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_a_feed_reads_back_with_both_parsers():
    """Every field PROTOCOL.md names, as icalendar and vobject read them."""
    text = feeds.render(listed(meetup(), meetup("m2", rsvp="no", cancelled=True)), AUDIENCE, single=False)
    check_syntax(text)
    calendar = icalendar.Calendar.from_ical(text)
    first, second = calendar.events
    assert str(first["UID"]) == "m1@boochat" and str(first["SUMMARY"]) == "Picnic, with friends; bring food"
    assert str(first["LOCATION"]) == "Park; north gate, by the lake"
    assert (first.start, first.end) == (STARTS, STARTS + timedelta(hours=3))
    assert first["URL"] == f"{BASE}/#/room/room-m1/meetup" and first["SEQUENCE"] == 0
    assert (str(first["STATUS"]), str(second["STATUS"])) == ("CONFIRMED", "CANCELLED")
    assert first["ORGANIZER"].params["CN"] == "Ann" and first["ORGANIZER"].startswith("urn:uuid:")
    attendee = first["ATTENDEE"]
    assert (attendee.params["CN"], attendee.params["PARTSTAT"]) == (SHOWN_BOB, "TENTATIVE")
    assert second["ATTENDEE"].params["PARTSTAT"] == "DECLINED"
    assert first["DTSTAMP"].dt == STARTS - timedelta(days=2)

    other = vobject.readOne(text)
    events = other.vevent_list
    assert [e.uid.value for e in events] == ["m1@boochat", "m2@boochat"]
    assert events[0].summary.value == "Picnic, with friends; bring food"
    assert events[0].location.value == "Park; north gate, by the lake"
    assert (events[0].dtstart.value, events[0].dtend.value) == (STARTS, STARTS + timedelta(hours=3))
    assert events[1].status.value == "CANCELLED"
    assert events[0].attendee.params["PARTSTAT"] == ["TENTATIVE"] and events[0].attendee.params["CN"] == [SHOWN_BOB]


def test_text_is_escaped_and_utc_times_carry_z():
    """Commas and semicolons escaped in text values; times of a UTC meetup in UTC, with no VTIMEZONE."""
    lines = unfolded(feeds.render(listed(meetup()), AUDIENCE, single=False))
    assert "SUMMARY:Picnic\\, with friends\\; bring food" in lines
    assert "LOCATION:Park\\; north gate\\, by the lake" in lines
    assert "DTSTART:20300331T170000Z" in lines and "DTEND:20300331T200000Z" in lines
    assert not any(line.startswith("BEGIN:VTIMEZONE") for line in lines)


def test_zoned_times_name_their_vtimezone():
    """A meetup in Berlin: TZID times, and a VTIMEZONE of that TZID covering both offsets of the year."""
    berlin = meetup(time_zone="Europe/Berlin")
    text = feeds.render(listed(berlin, meetup("m2", time_zone="America/New_York")), AUDIENCE, single=False)
    check_syntax(text)
    lines = unfolded(text)
    assert "DTSTART;TZID=Europe/Berlin:20300331T190000" in lines  # 17:00 UTC is 19:00 CEST
    assert "DTEND;TZID=Europe/Berlin:20300331T220000" in lines
    calendar = icalendar.Calendar.from_ical(text)
    assert {tz.tz_name for tz in calendar.timezones} == {"Europe/Berlin", "America/New_York"}
    assert calendar.get_missing_tzids() == set()
    first = calendar.events[0]
    assert first.start == STARTS and first.start.tzinfo is not None
    berlin_zone = "\r\n".join(lines).split("TZID:Europe/Berlin")[1].split("END:VTIMEZONE")[0]
    assert "TZOFFSETTO:+0100" in berlin_zone and "TZOFFSETTO:+0200" in berlin_zone  # winter and summer time
    # vobject turns local times into instants with the file's own VTIMEZONE: right only if it matches
    # (as UTC: Python never finds an instant of a zone like dateutil's equal to another zone's)
    other = vobject.readOne(text)
    assert [e.dtstart.value.astimezone(UTC) for e in other.vevent_list] == [STARTS, STARTS]
    assert [e.dtend.value.astimezone(UTC) for e in other.vevent_list] == [STARTS + timedelta(hours=3)] * 2


def test_long_and_multibyte_text_folds_at_75_octets():
    """Folding counts octets, never splits a character, and reads back whole."""
    name = "Fête 🎉 " * 20 + "end"
    text = feeds.render(listed(meetup(name=name[:100])), AUDIENCE, single=True)
    check_syntax(text)
    assert text.encode().decode() == text  # every line is valid UTF-8 on its own below
    assert all(line.decode("utf-8") is not None for line in text.encode().split(b"\r\n"))
    assert str(icalendar.Calendar.from_ical(text).events[0]["SUMMARY"]) == name[:100]
    assert vobject.readOne(text).vevent_list[0].summary.value == name[:100]


def test_the_tag_changes_with_what_the_file_shows_only():
    """Same inputs, same tag; a new version, sequence, name or address: another; 304 with no body."""
    items = listed(meetup())
    tag = feeds.etag(items, AUDIENCE, single=False)
    assert tag == feeds.etag(listed(meetup()), AUDIENCE, single=False) and tag.startswith('"')
    assert tag != feeds.etag(listed(meetup(), version=2), AUDIENCE, single=False)
    assert tag != feeds.etag(listed(meetup(), sequence=1), AUDIENCE, single=False)
    assert tag != feeds.etag(items, feeds.Audience(BOB, {"ann": User(id="ann", name="Annie")}, BASE), single=False)
    assert tag != feeds.etag(items, feeds.Audience(BOB, {"ann": ANN}, "https://other.example"), single=False)
    assert tag != feeds.etag(items, AUDIENCE, single=True)
    rendered = feeds.Rendered(size=1)
    full = feeds.answer(items, AUDIENCE, False, [], rendered)
    assert full.etag == tag and full.body is not None
    assert feeds.answer(items, AUDIENCE, False, ['"other"', tag], rendered).body is None


def test_rendered_files_are_kept_by_tag():
    """A file asked again is not rendered again; the least recently used goes first."""
    rendered = feeds.Rendered(size=2)
    rendered.put("a", "A")
    rendered.put("b", "B")
    assert rendered.get("a") == "A"
    rendered.put("c", "C")
    assert (rendered.get("a"), rendered.get("b"), rendered.get("c")) == ("A", None, "C")


def test_addresses_are_https_and_webcal():
    """The feed's address at BOOCHAT_PUBLIC_URL, and its webcal form."""
    from workers.meetups.domain import CalendarOwner

    feed = feeds.addresses("https://chat.example.com", CalendarOwner("ann", "tok"))
    assert (feed.url, feed.webcal_url, feed.reminders) == (
        "https://chat.example.com/calendar/tok.ics",
        "webcal://chat.example.com/calendar/tok.ics",
        True,
    )


def test_a_feed_of_200_meetups_renders_quickly():
    """The figure of issue 25: rendered cold, then answered from the process's files, then as 304."""
    items = listed(*[meetup(f"m{i}", starts=STARTS + timedelta(days=i), time_zone="Europe/Berlin") for i in range(200)])
    rendered = feeds.Rendered()
    started = time.perf_counter()
    cold = feeds.answer(items, AUDIENCE, False, [], rendered)
    rendering = time.perf_counter() - started
    started = time.perf_counter()
    warm = feeds.answer(items, AUDIENCE, False, [], rendered)
    kept = time.perf_counter() - started
    assert warm == cold and len(icalendar.Calendar.from_ical(cold.body or "").events) == 200
    print(f"\n200 meetups: rendered in {rendering * 1000:.1f} ms, answered again in {kept * 1000:.2f} ms")
    assert kept < 0.05
