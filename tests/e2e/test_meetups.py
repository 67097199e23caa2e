"""Meetups through the gateway: creation with its room, RSVPs, images, queries, attendees following
the room."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.client import Client

pytestmark = pytest.mark.e2e


def user(name: str) -> dict[str, str]:
    return {"id": f"{name.lower()}-{uuid.uuid4().hex[:8]}", "name": name}


def future(days: int = 7) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def people(stack: Any, *names: str) -> list[Client]:
    return [await Client.connect(stack.ws_url, dev_user=user(name)) for name in names]


async def close_all(*clients: Client) -> None:
    for client in clients:
        await client.close()


async def create_meetup(organizer: Client, *attendees: Client, **fields: Any) -> dict[str, Any]:
    data = {
        "name": "Picnic",
        "location": "Park",
        "takes_place_on": future(),
        "attendee_ids": [a.user["id"] for a in attendees],
        **fields,
    }
    meetup = (await organizer.ok("create_meetup", data))["meetup"]
    for client in (organizer, *attendees):
        await client.expect_event("meetup.created", lambda d: d["meetup"]["id"] == meetup["id"])
    return meetup


def about(meetup: dict[str, Any]) -> Any:
    return lambda data: data["meetup"]["id"] == meetup["id"]


async def test_create_meetup_opens_its_room(stack):
    """The organizer says yes, others have not responded; the meetup's room holds all of them."""
    ann, bob = await people(stack, "Ann", "Bob")
    data = {
        "name": " Picnic ",
        "location": "Park",
        "takes_place_on": future(),
        "attendee_ids": [bob.user["id"]] * 2,
        "image_url": "https://example.com/p.png",
    }
    meetup = (await ann.ok("create_meetup", data))["meetup"]
    assert (meetup["name"], meetup["organizer_id"], meetup["polls"], meetup["alerts"]) == (
        "Picnic",
        ann.user["id"],
        [],
        [],
    )
    assert meetup["attendees"] == [
        {"user_id": ann.user["id"], "rsvp": "yes"},
        {"user_id": bob.user["id"], "rsvp": "not_responded"},
    ]
    created = await bob.expect_event("meetup.created", about(meetup))
    assert created["meetup"] == meetup
    room = await bob.expect_event("room.created", lambda d: d["room"]["id"] == meetup["room_id"])
    assert room["room"]["name"] == "Picnic" and room["room"]["image_url"] == "https://example.com/p.png"
    assert set(room["room"]["participant_ids"]) == {ann.user["id"], bob.user["id"]}
    await bob.expect_event(
        "room.item_added", lambda d: d["item"]["room_id"] == meetup["room_id"] and d["item"]["kind"] == "announcement"
    )
    assert (await bob.ok("get_meetup", {"meetup_id": meetup["id"]}))["meetup"] == meetup
    await close_all(ann, bob)


async def test_create_meetup_errors(stack):
    """A past time is bad_request; an unknown attendee is not_found; a retried id makes one meetup."""
    (ann,) = await people(stack, "Ann")
    past = {"name": "Old", "location": "Park", "takes_place_on": "2001-01-01T00:00:00Z", "attendee_ids": []}
    error = await ann.error("create_meetup", past)
    assert error["code"] == "bad_request" and "data.takes_place_on" in error["details"]
    unknown = {**past, "takes_place_on": future(), "attendee_ids": ["nobody-" + uuid.uuid4().hex]}
    assert (await ann.error("create_meetup", unknown))["code"] == "not_found"
    request_id = str(uuid.uuid4())
    first = await ann.ok("create_meetup", {**unknown, "attendee_ids": []}, id=request_id)
    again = await ann.ok("create_meetup", {**unknown, "name": "Other", "attendee_ids": []}, id=request_id)
    assert again == first
    listed = (await ann.ok("list_meetups"))["meetups"]
    assert [m["id"] for m in listed] == [first["meetup"]["id"]]
    await close_all(ann)


async def test_rsvp_and_image_changes_reach_every_attendee(stack):
    """Attendees change RSVPs and the image; unchanged values send nothing; outsiders are refused."""
    ann, bob, eve = await people(stack, "Ann", "Bob", "Eve")
    meetup = await create_meetup(ann, bob)
    await bob.ok("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "maybe"})
    for client in (ann, bob):
        got = await client.expect_event("meetup.updated", about(meetup))
        assert got["meetup"]["attendees"][1] == {"user_id": bob.user["id"], "rsvp": "maybe"}
    await bob.ok("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "maybe"})
    await ann.ok("change_meetup_image", {"meetup_id": meetup["id"], "image_url": "https://example.com/new.png"})
    got = await bob.expect_event("meetup.updated", about(meetup))
    assert got["meetup"]["image_url"] == "https://example.com/new.png"
    assert got["meetup"]["attendees"][1]["rsvp"] == "maybe"  # the unchanged RSVP sent nothing before this
    assert (await eve.error("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "yes"}))["code"] == "forbidden"
    assert (await eve.error("get_meetup", {"meetup_id": meetup["id"]}))["code"] == "forbidden"
    assert (await eve.error("get_meetup", {"meetup_id": "missing"}))["code"] == "not_found"
    missing = {"meetup_id": "missing", "image_url": "https://example.com/x.png"}
    assert (await eve.error("change_meetup_image", missing))["code"] == "not_found"
    await close_all(ann, bob, eve)


async def test_list_meetups_by_time_then_creation(stack):
    """list_meetups: the user's meetups by takes_place_on, ties oldest first."""
    ann, bob = await people(stack, "Ann", "Bob")
    when = future(3)
    late = await create_meetup(ann, bob, name="Late", takes_place_on=future(9))
    first = await create_meetup(ann, name="First", takes_place_on=when)
    second = await create_meetup(bob, ann, name="Second", takes_place_on=when)
    listed = (await ann.ok("list_meetups"))["meetups"]
    assert [m["id"] for m in listed] == [first["id"], second["id"], late["id"]]
    assert [m["id"] for m in (await bob.ok("list_meetups"))["meetups"]] == [second["id"], late["id"]]
    await close_all(ann, bob)


async def test_attendees_follow_the_room(stack):
    """Invited to the room: an attendee, told with everyone; leaving: no longer one (organizer too)."""
    ann, bob, cy = await people(stack, "Ann", "Bob", "Cy")
    meetup = await create_meetup(ann, bob)
    await bob.ok("invite_to_room", {"room_id": meetup["room_id"], "user_id": cy.user["id"]})
    for client in (ann, bob, cy):
        got = await client.expect_event("meetup.updated", about(meetup))
        assert got["meetup"]["attendees"][-1] == {"user_id": cy.user["id"], "rsvp": "not_responded"}
    await cy.ok("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "yes"})
    await ann.ok("leave_room", {"room_id": meetup["room_id"]})
    for client in (bob, cy):
        got = await client.expect_event(
            "meetup.updated", lambda d: d["meetup"]["id"] == meetup["id"] and len(d["meetup"]["attendees"]) == 2
        )
        assert got["meetup"]["attendees"] == [
            {"user_id": bob.user["id"], "rsvp": "not_responded"},
            {"user_id": cy.user["id"], "rsvp": "yes"},
        ]
        assert got["meetup"]["organizer_id"] == ann.user["id"]
    assert (await ann.error("get_meetup", {"meetup_id": meetup["id"]}))["code"] == "forbidden"
    assert [m["id"] for m in (await ann.ok("list_meetups"))["meetups"]] == []
    await bob.ok("invite_to_room", {"room_id": meetup["room_id"], "user_id": ann.user["id"]})
    got = await ann.expect_event(
        "meetup.updated",
        lambda d: d["meetup"]["id"] == meetup["id"] and d["meetup"]["attendees"][0]["user_id"] == bob.user["id"],
    )
    assert got["meetup"]["attendees"][-1] == {"user_id": ann.user["id"], "rsvp": "not_responded"}
    await close_all(ann, bob, cy)
