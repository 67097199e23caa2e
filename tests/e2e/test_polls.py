"""Polls through the gateway: alerts, votes, closing by hand or by itself, moves of the meetup,
leavers, and racing last votes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.client import Client

pytestmark = pytest.mark.e2e


def user(name: str) -> dict[str, str]:
    return {"id": f"{name.lower()}-{uuid.uuid4().hex[:8]}", "name": name}


def future(days: int) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def people(stack: Any, *names: str) -> list[Client]:
    return [await Client.connect(stack.ws_url, dev_user=user(name)) for name in names]


async def close_all(*clients: Client) -> None:
    for client in clients:
        await client.close()


async def create_meetup(organizer: Client, *attendees: Client) -> dict[str, Any]:
    data = {
        "name": "Dinner",
        "location": "Park",
        "takes_place_on": future(7),
        "attendee_ids": [a.user["id"] for a in attendees],
    }
    meetup = (await organizer.ok("create_meetup", data))["meetup"]
    for client in (organizer, *attendees):
        await client.expect_event("meetup.created", lambda d: d["meetup"]["id"] == meetup["id"])
    return meetup


async def create_poll(
    creator: Client, meetup: dict[str, Any], poll_type: str, choices: list[str], participants: list[Client]
) -> dict[str, Any]:
    """A poll; every participant gets poll.created and then the meetup with its new alert."""
    data = {"meetup_id": meetup["id"], "poll_type": poll_type, "description": "Which?", "choices": choices}
    poll = (await creator.ok("create_poll", data))["poll"]
    for client in participants:
        assert (await client.expect_event("poll.created", of(poll)))["poll"] == poll
        await client.expect_event("meetup.updated", alerted(meetup, poll))
    return poll


def of(poll: dict[str, Any]) -> Any:
    return lambda data: data.get("poll", data).get("id", data.get("poll_id")) == poll["id"]


def alerted(meetup: dict[str, Any], poll: dict[str, Any]) -> Any:
    return lambda d: updated(meetup)(d) and any(a["poll_id"] == poll["id"] for a in d["meetup"]["alerts"])


def updated(meetup: dict[str, Any]) -> Any:
    return lambda d: d["meetup"]["id"] == meetup["id"]


async def no_more_updates(meetup: dict[str, Any], changer: Client, *clients: Client) -> None:
    """Nothing but one more meetup.updated, caused now, reaches ``clients``: none was left over."""
    await changer.ok("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "maybe"})
    for client in clients:
        got = await client.expect_event("meetup.updated", updated(meetup))
        mine = next(a for a in got["meetup"]["attendees"] if a["user_id"] == changer.user["id"])
        assert mine["rsvp"] == "maybe", "an earlier meetup.updated was still pending"
        assert client.pending("meetup.updated", updated(meetup)) == []


async def test_reschedule_poll_closes_itself_and_moves_the_meetup(stack):
    """Alerts appear and clear; the last vote closes the poll and moves the meetup: one update each."""
    ann, bob, cy = await people(stack, "Ann", "Bob", "Cy")
    everyone = (ann, bob, cy)
    meetup = await create_meetup(ann, bob, cy)
    later = future(9)
    poll = await create_poll(bob, meetup, "reschedule", [future(8), later], list(everyone))
    got = (await ann.ok("get_meetup", {"meetup_id": meetup["id"]}))["meetup"]
    assert got["alerts"] == [{"type": "pending_reschedule_poll", "meetup_id": meetup["id"], "poll_id": poll["id"]}]
    for voter, choice in ((ann, 1), (bob, 1)):
        await voter.ok("vote_poll", {"poll_id": poll["id"], "choice_index": choice})
        cleared = await voter.expect_event("meetup.updated", updated(meetup))
        assert cleared["meetup"]["alerts"] == []
    await cy.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 0})
    for client in everyone:
        cast = await client.expect_event("poll.vote_cast", lambda d: d["user_id"] == cy.user["id"])
        assert cast == {"poll_id": poll["id"], "meetup_id": meetup["id"], "user_id": cy.user["id"], "choice_index": 0}
        closed = await client.expect_event("poll.closed", of(poll))
        assert (closed["poll"]["status"], closed["poll"]["winner_index"]) == ("closed", 1)
        moved = await client.expect_event("meetup.updated", updated(meetup))
        assert instant(moved["meetup"]["takes_place_on"]) == instant(later) and moved["meetup"]["alerts"] == []
    await no_more_updates(meetup, cy, *everyone)
    got = (await bob.ok("get_meetup", {"meetup_id": meetup["id"]}))["meetup"]
    assert got["polls"][0]["status"] == "closed" and instant(got["takes_place_on"]) == instant(later)
    await close_all(*everyone)


async def test_relocate_poll_closed_by_the_organizer(stack):
    """Only the creator or the organizer closes; the winner relocates the meetup; closing twice conflicts."""
    ann, bob, cy = await people(stack, "Ann", "Bob", "Cy")
    meetup = await create_meetup(ann, bob, cy)
    poll = await create_poll(bob, meetup, "relocate", ["Beach", "Dock"], [ann, bob, cy])
    await cy.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 1})
    await cy.expect_event("meetup.updated", lambda d: d["meetup"]["id"] == meetup["id"] and not d["meetup"]["alerts"])
    assert (await cy.error("close_poll", {"poll_id": poll["id"]}))["code"] == "forbidden"
    await ann.ok("close_poll", {"poll_id": poll["id"]})
    for client in (ann, bob, cy):
        closed = await client.expect_event("poll.closed", of(poll))
        assert closed["poll"]["winner_index"] == 1 and closed["poll"]["votes"] == [
            {"user_id": cy.user["id"], "choice_index": 1}
        ]
        moved = await client.expect_event("meetup.updated", updated(meetup))
        assert moved["meetup"]["location"] == "Dock" and moved["meetup"]["alerts"] == []
    assert (await bob.error("close_poll", {"poll_id": poll["id"]}))["code"] == "conflict"
    assert (await cy.error("vote_poll", {"poll_id": poll["id"], "choice_index": 0}))["code"] == "conflict"
    await no_more_updates(meetup, bob, ann, bob, cy)
    await close_all(ann, bob, cy)


async def test_poll_errors_follow_the_precedence(stack):
    """not_found, then forbidden, then bad_request from state, then conflict."""
    ann, bob, eve = await people(stack, "Ann", "Bob", "Eve")
    meetup = await create_meetup(ann, bob)
    base = {"meetup_id": meetup["id"], "poll_type": "generic", "description": "Food?", "choices": ["a", "b"]}
    assert (await eve.error("create_poll", {**base, "meetup_id": "missing"}))["code"] == "not_found"
    assert (await eve.error("create_poll", base))["code"] == "forbidden"
    past = {**base, "poll_type": "reschedule", "choices": ["2001-01-01T00:00:00Z", future(3)]}
    assert (await ann.error("create_poll", past))["code"] == "bad_request"
    assert (await ann.error("create_poll", {**base, "choices": ["a", " a "]}))["code"] == "bad_request"
    poll = await create_poll(ann, meetup, "generic", ["a", "b"], [ann, bob])
    assert (await eve.error("vote_poll", {"poll_id": "missing", "choice_index": 0}))["code"] == "not_found"
    assert (await eve.error("vote_poll", {"poll_id": poll["id"], "choice_index": 7}))["code"] == "forbidden"
    assert (await eve.error("close_poll", {"poll_id": poll["id"]}))["code"] == "forbidden"
    error = await bob.error("vote_poll", {"poll_id": poll["id"], "choice_index": 2})
    assert error["code"] == "bad_request" and "data.choice_index" in error["details"]
    await bob.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 0})
    assert (await bob.error("vote_poll", {"poll_id": poll["id"], "choice_index": 1}))["code"] == "conflict"
    await close_all(ann, bob, eve)


async def test_later_attendees_see_polls_but_do_not_take_part(stack):
    """An attendee invited after a poll sees it in get_meetup, with no alert, and cannot vote."""
    ann, bob = await people(stack, "Ann", "Bob")
    meetup = await create_meetup(ann)
    poll = await create_poll(ann, meetup, "generic", ["a", "b"], [ann])
    await ann.ok("invite_to_room", {"room_id": meetup["room_id"], "user_id": bob.user["id"]})
    got = (await bob.expect_event("meetup.updated", updated(meetup)))["meetup"]
    assert [p["id"] for p in got["polls"]] == [poll["id"]] and got["alerts"] == []
    assert (await bob.error("vote_poll", {"poll_id": poll["id"], "choice_index": 0}))["code"] == "forbidden"
    await ann.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 0})
    await ann.expect_event("poll.closed", of(poll))
    await bob.sync()
    assert bob.pending("poll.closed") == [] and bob.pending("poll.vote_cast") == []
    await close_all(ann, bob)


async def test_concurrent_last_votes_close_exactly_once(stack):
    """Two last votes at the same time: both count, and the poll closes once."""
    ann, bob, cy = await people(stack, "Ann", "Bob", "Cy")
    everyone = (ann, bob, cy)
    meetup = await create_meetup(ann, bob, cy)
    poll = await create_poll(ann, meetup, "relocate", ["Beach", "Dock"], list(everyone))
    await ann.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 1})
    await asyncio.gather(
        bob.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 0}),
        cy.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 1}),
    )
    for client in everyone:
        closed = await client.expect_event("poll.closed", of(poll))
        assert len(closed["poll"]["votes"]) == 3 and closed["poll"]["winner_index"] == 1
        await client.expect_event("meetup.updated", lambda d: d["meetup"]["location"] == "Dock")
    # A barrier: the update this causes comes after anything the votes caused (which of the two racing
    # votes closed the poll decides whether its voter also got an alert update, so none is counted).
    await ann.ok("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "maybe"})
    for client in everyone:
        await client.expect_event("meetup.updated", lambda d: d["meetup"]["attendees"][0]["rsvp"] == "maybe")
        assert client.pending("poll.closed") == []
    got = (await cy.ok("get_meetup", {"meetup_id": meetup["id"]}))["meetup"]
    assert got["polls"][0]["status"] == "closed" and got["location"] == "Dock"
    await close_all(*everyone)


async def test_leaver_is_removed_from_open_polls(stack):
    """A leaver leaves the open polls (their vote counts); a poll whose last non-voter left closes and
    moves the meetup in the one update of the leave."""
    ann, bob, cy = await people(stack, "Ann", "Bob", "Cy")
    meetup = await create_meetup(ann, bob, cy)
    place = await create_poll(ann, meetup, "relocate", ["Beach", "Dock"], [ann, bob, cy])
    food = await create_poll(ann, meetup, "generic", ["Pizza", "Sushi"], [ann, bob, cy])
    await bob.ok("vote_poll", {"poll_id": food["id"], "choice_index": 1})
    await bob.expect_event("meetup.updated", lambda d: len(d["meetup"]["alerts"]) == 1)
    for voter in (ann, cy):
        await voter.ok("vote_poll", {"poll_id": place["id"], "choice_index": 0})
        await voter.expect_event("meetup.updated", lambda d: len(d["meetup"]["alerts"]) == 1)
    await bob.ok("leave_room", {"room_id": meetup["room_id"]})
    for client in (ann, cy):
        closed = await client.expect_event("poll.closed", of(place))
        assert closed["poll"]["participant_ids"] == [ann.user["id"], cy.user["id"]]
        left = (await client.expect_event("meetup.updated", updated(meetup)))["meetup"]
        assert [a["user_id"] for a in left["attendees"]] == [ann.user["id"], cy.user["id"]]
        assert left["location"] == "Beach"
    await no_more_updates(meetup, cy, ann, cy)
    for voter in (ann, cy):
        await voter.ok("vote_poll", {"poll_id": food["id"], "choice_index": 0})
    closed = await cy.expect_event("poll.closed", of(food))
    assert closed["poll"]["participant_ids"] == [ann.user["id"], cy.user["id"]]
    assert len(closed["poll"]["votes"]) == 3 and closed["poll"]["winner_index"] == 0
    await bob.sync()
    assert bob.pending("poll.closed") == [] and bob.pending("meetup.updated", updated(meetup)) == []
    await close_all(ann, bob, cy)


async def test_a_leaver_is_refused_a_poll_that_closed_before_they_left(stack):
    """A closed poll keeps its participants, but one who has left the meetup's room no longer
    belongs to it: their vote is forbidden (saying nothing of the poll), another's is a conflict."""
    ann, bob = await people(stack, "Ann", "Bob")
    meetup = await create_meetup(ann, bob)
    poll = await create_poll(ann, meetup, "generic", ["Pizza", "Sushi"], [ann, bob])
    for voter in (ann, bob):
        await voter.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 0})
    await bob.expect_event("poll.closed", of(poll))
    await bob.ok("leave_room", {"room_id": meetup["room_id"]})
    refused = await bob.error("vote_poll", {"poll_id": poll["id"], "choice_index": 1})
    assert refused["code"] == "forbidden" and "closed" not in refused["message"]
    assert (await ann.error("vote_poll", {"poll_id": poll["id"], "choice_index": 1}))["code"] == "conflict"
    await close_all(ann, bob)
