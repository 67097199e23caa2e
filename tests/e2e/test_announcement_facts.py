"""Announcements through the whole stack carry their facts beside their text: as they arrive, and as
they are read back (get_room_items)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.common import format_time
from e2e.helpers import announced, make_room

pytestmark = pytest.mark.e2e

# 18:00 UTC in winter: 19:00 in Berlin.
STARTS = datetime(datetime.now(UTC).year + 1, 12, 14, 18, 0, tzinfo=UTC)


async def test_a_meetup_announcement_carries_its_facts_and_says_its_time_where_it_is_lived(connect):
    """The text gives the time in the meetup's zone; the facts give the instants and the zone, also read back."""
    ann, bob = await connect("Ann"), await connect("Bob")
    data = {
        "name": "Dinner",
        "location": "Bar",
        "takes_place_on": format_time(STARTS),
        "ends_on": format_time(STARTS + timedelta(hours=3)),
        "time_zone": "Europe/Berlin",
        "attendee_ids": [bob.user["id"]],
    }
    meetup = (await ann.ok("create_meetup", data))["meetup"]
    item = await announced(bob, meetup["room_id"], "planned")
    assert item["content"].endswith(STARTS.strftime("%a 14 Dec %Y, 19:00 CET"))
    facts = item["facts"]
    assert facts["kind"] == "meetup_created" and (facts["by_id"], facts["by_name"]) == (ann.user["id"], "Ann")
    assert (facts["meetup_id"], facts["meetup_name"], facts["location"]) == (meetup["id"], "Dinner", "Bar")
    assert (facts["takes_place_on"], facts["time_zone"]) == (format_time(STARTS), "Europe/Berlin")
    assert facts["ends_on"] == format_time(STARTS + timedelta(hours=3))
    items = (await bob.ok("get_room_items", {"room_id": meetup["room_id"]}))["items"]
    [stored] = [i for i in items if i["seq"] == item["seq"]]
    assert stored["facts"] == facts


async def test_room_announcements_carry_their_facts_and_messages_none(connect):
    """A member added: who added whom; a message has facts null."""
    ann, bob, cy = await connect("Ann"), await connect("Bob"), await connect("Cy")
    room = await make_room(ann, bob)
    await ann.ok("invite_to_room", {"room_id": room["id"], "user_id": cy.user["id"]})
    item = await announced(bob, room["id"], "added")
    assert item["facts"] == item["facts"] | {
        "kind": "member_joined",
        "by_id": ann.user["id"],
        "by_name": "Ann",
        "user_id": cy.user["id"],
        "user_name": "Cy",
    }
    sent = (await ann.ok("send_message", {"room_id": room["id"], "content": "hi"}))["item"]
    assert sent["facts"] is None
