"""Calendars through the whole stack: WebSocket clients ask for their feed, a plain HTTP GET on the
gateway reads it (answered by the meetups worker), with ETag, 304, 404 after a reset; one meetup as a
file; cancelling a meetup; bad meetups refused."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import pytest
import vobject
from support.client import Client

from contracts.common import format_time
from e2e.helpers import announced, new_user

pytestmark = pytest.mark.e2e

STARTS = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)


async def meetup(organizer, *others, starts: datetime = STARTS, **more) -> dict:
    data = {
        "name": "Dinner, then; drinks",
        "location": "The Crown, Main Street",
        "takes_place_on": format_time(starts),
        "attendee_ids": [o.user["id"] for o in others],
    }
    created = (await organizer.ok("create_meetup", data | more))["meetup"]
    for someone in (organizer, *others):
        await someone.expect_event("meetup.created", lambda d: d["meetup"]["id"] == created["id"])
    return created


async def test_a_feed_over_http_with_etag_304_and_404_after_a_reset(connect, stack):
    """get_calendar_feed's url answers text/calendar that two parsers read; If-None-Match gets 304;
    a change gets a new tag; after reset_calendar_feed the old url is 404, the new one 200."""
    ann, bob = await connect("Ann"), await connect("Bob")
    first = await meetup(ann, bob, time_zone="Europe/Berlin", ends_on=format_time(STARTS + timedelta(hours=3)))
    second = await meetup(ann, bob, starts=STARTS + timedelta(days=1))
    feed = await bob.ok("get_calendar_feed")
    assert feed["url"].startswith(stack.http_url + "/calendar/") and feed["webcal_url"].startswith("webcal://")
    async with httpx.AsyncClient() as http:
        got = await http.get(feed["url"])
        assert got.status_code == 200 and got.headers["content-type"] == "text/calendar; charset=utf-8"
        assert got.headers["cache-control"] == "private, no-cache" and got.headers["etag"].startswith('"')
        assert got.content.endswith(b"END:VCALENDAR\r\n")
        events = icalendar.Calendar.from_ical(got.text).events
        assert [str(e["UID"]) for e in events] == [f"{first['id']}@boochat", f"{second['id']}@boochat"]
        assert events[0].start == STARTS and events[0].end == STARTS + timedelta(hours=3)
        assert str(events[0]["SUMMARY"]) == "Dinner, then; drinks"
        assert "DTSTART;TZID=Europe/Berlin:" in got.text and "BEGIN:VTIMEZONE" in got.text
        assert [v.uid.value for v in vobject.readOne(got.text).vevent_list] == [str(e["UID"]) for e in events]

        same = await http.get(feed["url"], headers={"If-None-Match": got.headers["etag"]})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == got.headers["etag"]
        head = await http.head(feed["url"])
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0

        await bob.ok("change_rsvp", {"meetup_id": first["id"], "rsvp": "yes"})
        changed = await http.get(feed["url"], headers={"If-None-Match": got.headers["etag"]})
        assert changed.status_code == 200 and changed.headers["etag"] != got.headers["etag"]
        assert "PARTSTAT=ACCEPTED" in changed.text

        new = await bob.ok("reset_calendar_feed")
        assert new["url"] != feed["url"]
        gone = await http.get(feed["url"])
        unknown = await http.get(stack.http_url + "/calendar/" + "x" * 43 + ".ics")
        assert (gone.status_code, gone.text) == (unknown.status_code, unknown.text) == (404, "not found\n")
        assert (await http.get(new["url"])).status_code == 200
        assert (await http.post(new["url"])).status_code == 405


async def test_one_meetup_as_a_file_for_a_browser_link(connect):
    """/calendar/<token>/<meetup>.ics: that meetup alone, as a download; someone else's: 404."""
    ann, bob, cy = await connect("Ann"), await connect("Bob"), await connect("Cy")
    mine = await meetup(ann, bob)
    theirs = await meetup(ann, cy)
    url = (await bob.ok("get_calendar_feed"))["url"]
    async with httpx.AsyncClient() as http:
        one = await http.get(url.removesuffix(".ics") + f"/{mine['id']}.ics")
        assert one.status_code == 200 and one.headers["content-disposition"] == 'attachment; filename="meetup.ics"'
        assert [str(e["UID"]) for e in icalendar.Calendar.from_ical(one.text).events] == [f"{mine['id']}@boochat"]
        other = await http.get(url.removesuffix(".ics") + f"/{theirs['id']}.ics")
        assert (other.status_code, other.text) == (404, "not found\n")


async def test_cancelling_tells_everyone_announces_and_marks_the_feed(connect):
    """cancel_meetup: meetup.updated with cancelled_at to every attendee, an announcement in the
    room, STATUS:CANCELLED with a higher SEQUENCE in the feed; only the organizer, and only once."""
    ann, bob = await connect("Ann"), await connect("Bob")
    created = await meetup(ann, bob)
    assert (await bob.error("cancel_meetup", {"meetup_id": created["id"]}))["code"] == "forbidden"
    await ann.ok("cancel_meetup", {"meetup_id": created["id"]})
    for someone in (ann, bob):
        told = await someone.expect_event(
            "meetup.updated", lambda d: d["meetup"]["id"] == created["id"] and d["meetup"]["cancelled_at"]
        )
        assert told["meetup"]["ends_on"] == format_time(STARTS + timedelta(hours=2))
    text = (await announced(bob, created["room_id"], "cancelled"))["content"]
    assert text.startswith("Ann cancelled Dinner, then; drinks")
    assert (await ann.error("cancel_meetup", {"meetup_id": created["id"]}))["code"] == "conflict"
    url = (await bob.ok("get_calendar_feed"))["url"]
    async with httpx.AsyncClient() as http:
        [event] = icalendar.Calendar.from_ical((await http.get(url)).text).events
    assert (str(event["STATUS"]), event["SEQUENCE"]) == ("CANCELLED", 1)


async def test_a_meetup_ending_before_it_starts_or_in_an_unknown_zone_is_refused(connect):
    """bad_request naming the field, and nothing is made: no meetup, no room."""
    ann = await connect("Ann")
    base = {"name": "Nope", "location": "Park", "takes_place_on": format_time(STARTS), "attendee_ids": []}
    for bad, field in (
        ({"ends_on": format_time(STARTS - timedelta(hours=1))}, "data.ends_on"),
        ({"time_zone": "Atlantis/Capital"}, "data.time_zone"),
    ):
        error = await ann.error("create_meetup", base | bad)
        assert error["code"] == "bad_request" and list(error["details"]) == [field]
    assert (await ann.ok("list_meetups"))["meetups"] == []
    assert (await ann.ok("list_rooms"))["rooms"] == []


async def test_a_feed_of_200_meetups_answers_quickly_and_304_when_unchanged(start_stack):
    """The figure of issue 25, through the gateway: the first GET renders, the next ones are the
    process's rendered file, and If-None-Match gets 304."""
    stack = await start_stack(max_rooms_per_hour=1000, rate_limit_per_minute=100000)
    ann = await Client.connect(stack.ws_url, dev_user=new_user("Ann"))
    for batch in range(0, 200, 20):
        await asyncio.gather(
            *(
                ann.ok(
                    "create_meetup",
                    {
                        "name": f"Meetup {day}",
                        "location": "Park",
                        "takes_place_on": format_time(STARTS + timedelta(days=day)),
                        "attendee_ids": [],
                        "time_zone": "Europe/Berlin",
                    },
                    timeout=30,
                )
                for day in range(batch, batch + 20)
            )
        )
    url = (await ann.ok("get_calendar_feed"))["url"]
    async with httpx.AsyncClient() as http:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            got = await http.get(url)
            timings.append(time.perf_counter() - started)
            assert got.status_code == 200
        assert len(icalendar.Calendar.from_ical(got.text).events) == 200
        started = time.perf_counter()
        same = await http.get(url, headers={"If-None-Match": got.headers["etag"]})
        not_modified = time.perf_counter() - started
        assert same.status_code == 304
    print(
        f"\nfeed of 200 meetups over HTTP: first {timings[0] * 1000:.0f} ms, then "
        f"{', '.join(f'{t * 1000:.0f}' for t in timings[1:])} ms; 304 in {not_modified * 1000:.0f} ms"
    )
    await ann.close()
