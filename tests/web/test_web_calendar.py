"""Meetups in calendars, in the browser: add one to a calendar, subscribe to the feed and reset it,
cancel a meetup, reminders on and off and shown when they come, times in the viewer's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest
from playwright.async_api import Page, expect
from support.client import Client

from contracts.common import format_time
from web.helpers import Wire

pytestmark = pytest.mark.web

FEED = re.compile(r"^https?://[^/]+/calendar/[A-Za-z0-9_-]{43}\.ics$")
# 18:00 UTC in December: 13:00 in New York, 19:00 in Berlin.
STARTS = datetime(datetime.now(UTC).year + 1, 12, 14, 18, 0, tzinfo=UTC)


async def plan_meetup(page: Page, name: str, *attendee_ids: str, until: str | None = None) -> str:
    """Plan a meetup through the New meetup form; its panel opens. Returns the When field's value."""
    await page.get_by_role("button", name="New meetup").click()
    dialog = page.locator("dialog")
    await dialog.get_by_label("What").fill(name)
    await dialog.get_by_label("Where").fill("The park")
    when = await dialog.get_by_label("When").input_value()
    if until is not None:
        await dialog.get_by_label("Until").fill(when[:11] + until)
    for attendee in attendee_ids:
        await dialog.locator(f'input[type=checkbox][value="{attendee}"]').check()
    await dialog.get_by_role("button", name="Plan it").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#meetup-body h2")).to_have_text(name)
    return when


async def open_calendar(page: Page) -> None:
    await page.get_by_role("button", name="Calendar", exact=True).click()
    await expect(page.locator("#calendar-url")).to_have_value(FEED)


async def test_add_to_calendar_downloads_the_meetup_in_its_time_zone(people, tmp_path: Path) -> None:
    """The form's time zone is the browser's; the link downloads a text/calendar file of that one
    meetup, with its end; a reschedule poll does not offer the meetup's own time."""
    ann = await people.sign_in("Ann", timezone_id="Europe/Berlin")
    await ann.page.get_by_role("button", name="New meetup").click()
    await expect(ann.page.locator("dialog").get_by_label("Time zone")).to_have_value("Europe/Berlin")
    await ann.page.locator("dialog").get_by_role("button", name="Cancel").click()
    when = await plan_meetup(ann.page, "Picnic", until="22:00")
    await expect(ann.page.get_by_test_id("meetup-ends")).to_contain_text("22:00")
    link = ann.page.get_by_role("link", name="Add to calendar")
    href = await link.get_attribute("href")
    assert href is not None and re.fullmatch(r"https?://[^/]+/calendar/[A-Za-z0-9_-]{43}/[0-9a-f-]+\.ics", href)
    async with ann.page.expect_download() as downloading:
        await link.click()
    saved = tmp_path / "meetup.ics"
    await (await downloading.value).save_as(saved)
    [event] = icalendar.Calendar.from_ical(saved.read_bytes()).events
    assert str(event["SUMMARY"]) == "Picnic" and str(event["LOCATION"]) == "The park"
    starts, ends = event.decoded("DTSTART"), event.decoded("DTEND")
    assert str(starts.tzinfo) == "Europe/Berlin" and starts.strftime("%Y-%m-%dT%H:%M") == when
    assert ends - starts == timedelta(hours=3)
    async with httpx.AsyncClient() as http:
        answer = await http.get(href)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")

    await ann.page.get_by_role("button", name="New poll").click()
    dialog = ann.page.locator("dialog")
    await dialog.get_by_label("Kind").select_option("reschedule")
    first = await dialog.get_by_label("Choice 1").input_value()
    assert first != when and first[11:] == when[11:]
    assert datetime.fromisoformat(first) - datetime.fromisoformat(when) == timedelta(days=1)


async def test_subscribe_shows_the_addresses_and_a_reset_changes_them(people) -> None:
    """The https and webcal addresses; a confirmed reset gives new ones and the old one is gone."""
    ann = await people.sign_in("Ann")
    await open_calendar(ann.page)
    old = await ann.page.locator("#calendar-url").input_value()
    await expect(ann.page.locator("#calendar-webcal")).to_have_value("webcal:" + old.split(":", 1)[1])
    async with httpx.AsyncClient() as http:
        answer = await http.get(old)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")
        await ann.page.get_by_role("button", name="Reset the address").click()
        await ann.page.get_by_role("button", name="Reset it").click()
        await expect(ann.page.locator("#calendar-url")).not_to_have_value(old)
        await expect(ann.page.locator("#calendar-url")).to_have_value(FEED)
        new = await ann.page.locator("#calendar-url").input_value()
        await expect(ann.page.locator("#calendar-webcal")).to_have_value("webcal:" + new.split(":", 1)[1])
        assert (await http.get(old)).status_code == 404
        assert (await http.get(new)).status_code == 200


async def test_reminders_switch_round_trip(people) -> None:
    """Off, and still off after a reload (the server has it); on again likewise."""
    ann = await people.sign_in("Ann")
    switch = ann.page.get_by_label("Remind me before my meetups")
    for wanted in (False, True):
        await open_calendar(ann.page)
        await expect(switch).to_be_enabled()
        await switch.set_checked(wanted)
        await expect(switch).to_be_enabled()  # disabled while set_reminders is on its way
        await ann.page.reload()
        await expect(ann.page.locator("#me")).to_contain_text("Ann")
        await open_calendar(ann.page)
        await expect(switch).to_be_enabled()
        await (expect(switch).to_be_checked() if wanted else expect(switch).not_to_be_checked())
        await ann.page.locator("dialog").get_by_role("button", name="Close").click()


async def test_cancelling_marks_the_meetup_cancelled_for_the_others(people) -> None:
    """The organizer cancels, confirmed; the attendee's panel, list and timeline say so."""
    bob = await people.sign_in("Bob")
    ann = await people.sign_in("Ann")
    await plan_meetup(ann.page, "Barbecue", bob.id)
    await bob.page.locator("#meetup-list .room-link", has_text="Barbecue").click()
    await expect(bob.page.locator("#meetup-body h2")).to_have_text("Barbecue")
    await expect(bob.page.get_by_role("button", name="Cancel meetup")).to_have_count(0)  # the organizer's only
    await ann.page.get_by_role("button", name="Cancel meetup").click()
    await ann.page.locator("dialog").get_by_role("button", name="Cancel the meetup").click()
    await expect(ann.page.locator("dialog")).to_be_hidden()
    await expect(bob.page.get_by_test_id("meetup-cancelled")).to_be_visible()
    await expect(bob.page.locator("#meetup-list .room-link.cancelled", has_text="Barbecue")).to_be_visible()
    await expect(bob.page.locator('#timeline .announcement[data-kind="meetup_cancelled"]')).to_contain_text("Barbecue")
    await expect(ann.page.get_by_role("button", name="Cancel meetup")).to_have_count(0)


async def test_times_in_the_viewers_time_zone_and_reminders_shown(people, stack) -> None:
    """An 18:00 UTC meetup in Berlin reads 13:00 in New York; a reminder shows a note and marks the meetup."""
    wire = Wire()
    bob = await people.sign_in("Bob", prepare=wire.attach, timezone_id="America/New_York")
    ann = await Client.connect(stack.ws_url, dev_user={"id": f"ann-{bob.id}", "name": "Ann"})
    try:
        data = {
            "name": "Dinner",
            "location": "Bar",
            "takes_place_on": format_time(STARTS),
            "time_zone": "Europe/Berlin",
            "attendee_ids": [bob.id],
        }
        meetup = (await ann.ok("create_meetup", data))["meetup"]
    finally:
        await ann.close()
    await bob.page.locator("#meetup-list .room-link", has_text="Dinner").click()
    announcement = bob.page.locator('#timeline .announcement[data-kind="meetup_created"]')
    await expect(announcement).to_contain_text("Ann planned Dinner at Bar on")
    await expect(announcement).to_contain_text("13:00")
    assert "19:00" not in await announcement.inner_text()
    await expect(bob.page.get_by_test_id("meetup-zone")).to_contain_text("Europe/Berlin")

    wire.inject(
        {
            "type": "event",
            "event": "meetup.reminder",
            "data": {"meetup": meetup, "kind": "reminder", "lead_seconds": 7200},
        }
    )
    await expect(bob.page.locator(".toast.info")).to_contain_text("Reminder: Dinner starts in 2 hours")
    await expect(bob.page.get_by_test_id("meetup-reminder")).to_contain_text("13:00")
    await expect(bob.page.locator("#meetup-list .room-link.reminded", has_text="Dinner")).to_be_visible()
