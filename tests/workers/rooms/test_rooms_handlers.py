"""The rooms worker's commands, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from support.handlers import harness

from contracts.envelope import Command, Failure
from contracts.internal import INTERNAL
from workers.rooms.app import WORKER
from workers.rooms.handlers import FOLLOWERS
from workers.runtime.store import IDEMPOTENCY_WINDOW, ProcessedCommand


@pytest.fixture
async def rooms(mongo_url):
    """Rooms, with followers that apply every hand-over."""
    loaded = await harness(WORKER, mongo_url)
    for type in FOLLOWERS:
        loaded.rpc.answer(INTERNAL[type].owner, type, lambda command: {})
    return loaded


def handed_over(rooms, type: str = "copy_room_changes") -> list[str]:
    """The types of the events rooms handed over by the follower's command ``type``, in order."""
    return [
        event["type"]
        for worker, command in rooms.rpc.calls
        if (worker, command.type) == (INTERNAL[type].owner, type)
        for event in command.data["events"]
    ]


async def test_create_room_stores_publishes_and_replies(rooms):
    """create_room: the reply's room, a room.created event, and room.created to every participant."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]
    assert room["participant_ids"] == [alice.id, bob.id]
    [created] = rooms.events("room.created")
    assert created["payload"]["names"] == {alice.id: "Alice", bob.id: "Bob"}
    assert created["version"] == 1 and created["correlation_id"] and created["actor_id"] == alice.id
    assert room["last_seq"] == 0 and rooms.outbox.deliveries == [], "what members see of it is messaging's"


async def test_retried_create_room_makes_one_room(rooms):
    """The same command id returns the first reply and creates nothing more."""
    [alice] = rooms.add_users("Alice")
    first = await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}, id="same")
    again = await rooms.ok("create_room", alice, {"name": "Other", "participant_ids": []}, id="same")
    assert again == first
    assert len(rooms.events("room.created")) == 1
    assert (await rooms.ok("user_rooms", alice))["room_ids"] == [first["room"]["id"]]


async def test_retry_after_a_crash_before_the_reply_was_remembered(rooms):
    """Events stored with the command but no remembered reply (a crash): the retry replies from the events."""
    from workers.runtime.store import ProcessedCommand

    [alice] = rooms.add_users("Alice")
    first = await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}, id="crash")
    await ProcessedCommand.find_all().delete()
    assert await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}, id="crash") == first
    assert len(rooms.events("room.created")) == 1


async def test_invite_and_leave_are_handed_to_every_follower_before_the_reply(rooms):
    """A membership change waits for the copies (the rare path pays): handed over, then replied;
    each follower by its own command, with the events it copies."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]
    await rooms.ok("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id})
    await rooms.ok("leave_room", bob, {"room_id": room_id})
    assert handed_over(rooms) == ["room.created", "room.member_joined", "room.member_left"]
    assert handed_over(rooms, "follow_membership") == ["room.member_joined", "room.member_left"]
    assert handed_over(rooms, "remove_leavers") == ["room.member_left"]
    [left] = rooms.events("room.member_left")
    assert left["payload"]["user_name"] == "Bob" and bob.id not in left["payload"]["room"]["participant_ids"]
    assert await rooms.error("rename_room", bob, {"room_id": room_id, "name": "Mine"}) == "forbidden"


async def test_the_followers_are_asked_at_once(rooms):
    """A leave is handed to messaging, meetups and polls concurrently: each answers only once all
    three have been asked."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]["id"]
    asked, everyone = set(), asyncio.Event()
    call = rooms.rpc.call

    async def waiting_for_the_others(worker, command, timeout=None):
        if command.type in FOLLOWERS:
            asked.add(command.type)
            if asked == set(FOLLOWERS):
                everyone.set()
            await asyncio.wait_for(everyone.wait(), 5)
        return await call(worker, command, timeout)

    rooms.rpc.call = waiting_for_the_others
    await rooms.ok("leave_room", bob, {"room_id": room_id})
    assert asked == set(FOLLOWERS)


@pytest.mark.parametrize("follower", sorted(FOLLOWERS))
@pytest.mark.parametrize("code", ["timeout", "unavailable", "internal"])
async def test_a_leave_a_follower_cannot_apply_is_unavailable_until_a_retry_hands_it_over(rooms, follower, code):
    """A follower that fails or does not answer in time: the leave is stored once but not ok (nor
    remembered); the retry with the same id hands the stored change over again, then answers ok."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]["id"]
    owner = INTERNAL[follower].owner
    rooms.rpc.answer(owner, follower, lambda command: Failure(code=code, message="down"))
    reply = await rooms.command("leave_room", bob, {"room_id": room_id}, id="leave")
    assert reply.error is not None and reply.error.code == "unavailable", reply
    key = Command(type="leave_room", id="leave", user_id=bob.id).key
    assert await ProcessedCommand.get(key) is None, "nothing remembered: a retry acts"
    [left] = rooms.events("room.member_left")
    assert (await rooms.command("leave_room", bob, {"room_id": room_id}, id="leave")).error.code == "unavailable"

    rooms.rpc.answer(owner, follower, lambda command: {})
    rooms.rpc.calls.clear()
    assert await rooms.ok("leave_room", bob, {"room_id": room_id}, id="leave") == {}
    assert rooms.events("room.member_left") == [left], "stored once"
    assert {type: handed_over(rooms, type) for type in FOLLOWERS} == {
        type: ["room.member_left"] for type in FOLLOWERS
    }, "the stored change, handed to every follower again"
    rooms.rpc.calls.clear()
    assert await rooms.ok("leave_room", bob, {"room_id": room_id}, id="leave") == {}
    assert rooms.rpc.calls == [], "remembered once handed over"


async def test_a_retry_that_takes_over_from_a_copy_cut_off_before_its_hand_over_hands_it_over(rooms, monkeypatch):
    """The first copy of an invite committed, then stopped before handing over (its process died):
    the retry, taking over its stale claim, hands the committed change over before answering ok."""
    from workers.runtime import dispatch

    class Crash(BaseException):
        pass

    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]

    async def die(*args, **kwargs):
        raise Crash

    async def never(*args, **kwargs):  # a dead process releases nothing
        return None

    monkeypatch.setattr(rooms.runtime, "hand_over", die)
    monkeypatch.setattr(dispatch, "settle", never)
    with pytest.raises(Crash):
        await rooms.command("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id}, id="cut")
    monkeypatch.undo()
    assert handed_over(rooms, "follow_membership") == []
    await ProcessedCommand.get_pymongo_collection().update_many({}, {"$set": {"claimed_at": 0.0}})  # long ago
    assert await rooms.ok("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id}, id="cut") == {}
    assert handed_over(rooms, "follow_membership") == ["room.member_joined"]
    assert len(rooms.events("room.member_joined")) == 1


async def test_overlapping_copies_of_a_command_act_once(rooms):
    """Four copies of one invite at once: one acts, every copy gets its reply (not conflict)."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]
    data = {"room_id": room_id, "user_id": bob.id}
    replies = await asyncio.gather(*(rooms.command("invite_to_room", alice, data, id="same") for _ in range(4)))
    assert [(r.ok, r.error) for r in replies] == [({}, None)] * 4
    assert len(rooms.events("room.member_joined")) == 1


async def test_queries_change_nothing_and_are_not_remembered(rooms):
    """A query with a reused id is answered afresh."""
    [alice] = rooms.add_users("Alice")
    assert (await rooms.ok("user_rooms", alice, id="q"))["room_ids"] == []
    await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []})
    assert len((await rooms.ok("user_rooms", alice, id="q"))["room_ids"]) == 1


async def test_internal_requests(rooms):
    """user_rooms lists a user's rooms; open_meetup_room is idempotent by id and names the meetup."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]
    assert (await rooms.ok("user_rooms", alice))["room_ids"] == [room_id]
    assert (await rooms.ok("user_rooms", bob))["room_ids"] == []
    data = {"room_id": "meetup-room", "meetup_id": "m1", "name": "Picnic", "participant_ids": [bob.id]}
    first = await rooms.ok("open_meetup_room", alice, data)
    assert await rooms.ok("open_meetup_room", alice, data, id="another") == first
    assert rooms.events("room.created")[-1]["payload"]["room"]["meetup_id"] == "m1"


async def test_a_copy_that_takes_over_from_a_crashed_one_answers_what_it_committed(rooms, monkeypatch):
    """The first copy wrote the aggregate and died before publishing or remembering: a retry, once the
    claim is stale, gets that copy's ok (not conflict), and the event goes out once."""
    from workers.runtime import dispatch
    from workers.runtime.store import ProcessedCommand

    class Crash(BaseException):
        pass

    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]

    async def die(*args, **kwargs):
        raise Crash

    async def never(*args, **kwargs):  # a dead process releases nothing
        return None

    monkeypatch.setattr(rooms.outbox, "flush", die)
    monkeypatch.setattr(dispatch, "settle", never)
    with pytest.raises(Crash):
        await rooms.command("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id}, id="crashy")
    monkeypatch.undo()
    assert rooms.events("room.member_joined") == []
    await ProcessedCommand.get_pymongo_collection().update_many({}, {"$set": {"claimed_at": 0.0}})  # long ago
    reply = await rooms.command("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id}, id="crashy")
    assert (reply.ok, reply.error) == ({}, None)
    assert len(rooms.events("room.member_joined")) == 1


async def test_a_create_room_id_reused_after_the_window_answers_its_room_to_members_only(rooms, monkeypatch):
    """After 24 hours the key is forgotten and the id is a new command's: it gets the room it made
    while its sender is a member, and is refused like any request about the room once they left."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}, id="old"))["room"]
    await rooms.ok("leave_room", alice, {"room_id": room["id"]})
    later = datetime.now(UTC) + IDEMPOTENCY_WINDOW + timedelta(hours=1)
    monkeypatch.setattr(rooms.runtime, "now", lambda: later)
    await ProcessedCommand.find_all().delete()  # the TTL index's work, a day on
    again = await rooms.command("create_room", bob, {"name": "Den", "participant_ids": []}, id="new")
    assert again.ok is not None, "a member's other create_room acts"
    reply = await rooms.command("create_room", alice, {"name": "Den", "participant_ids": []}, id="old")
    assert reply.error is not None and reply.error.code == "forbidden", reply
    assert len(rooms.events("room.created")) == 2


async def test_a_retry_after_an_exception_past_the_commit_answers_the_committed_outcome(rooms, monkeypatch):
    """The first copy committed the invite, then raised (here: applying its projections): the retry
    with the same id answers ok, what was committed, and hands it over; it does not decide again
    (which would say conflict: already a member)."""
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]

    async def broken(events):
        raise RuntimeError("projection store down")

    monkeypatch.setattr(rooms.runtime, "project", broken)
    with pytest.raises(RuntimeError):
        await rooms.command("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id}, id="raised")
    monkeypatch.undo()
    rooms.rpc.calls.clear()
    assert await rooms.ok("invite_to_room", alice, {"room_id": room_id, "user_id": bob.id}, id="raised") == {}
    assert handed_over(rooms, "follow_membership") == ["room.member_joined"]
    assert len(rooms.events("room.member_joined")) == 1


async def test_a_slow_first_copy_keeps_its_claim_while_it_runs(rooms, monkeypatch):
    """Claims go stale after the request timeout; a copy still acting re-dates its own, so a second
    copy waiting for longer than that does not take over (and act twice): it gets the first's reply."""
    from pymongo.asynchronous.collection import AsyncCollection

    stale_after = 0.3
    rooms.runtime.settings = rooms.runtime.settings.model_copy(update={"request_timeout_seconds": stale_after})
    alice, bob = rooms.add_users("Alice", "Bob")
    room_id = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": []}))["room"]["id"]

    entered, release, waited = asyncio.Event(), asyncio.Event(), asyncio.Event()
    answer = rooms.rpc.call

    async def slow_users(worker, command, timeout=None):
        if command.type == "resolve_users" and not release.is_set():
            entered.set()
            await release.wait()
        return await answer(worker, command, timeout)

    started = 0.0
    find_one = AsyncCollection.find_one

    def polled(self, *args, **kwargs):  # the second copy's polls of the claim: long enough to go stale
        if self.name == "commands" and started and time.time() - started > 4 * stale_after:
            waited.set()
        return find_one(self, *args, **kwargs)

    monkeypatch.setattr(rooms.rpc, "call", slow_users)
    monkeypatch.setattr(AsyncCollection, "find_one", polled)
    data = {"room_id": room_id, "user_id": bob.id}
    first = asyncio.create_task(rooms.command("invite_to_room", alice, data, id="slow"))
    await asyncio.wait_for(entered.wait(), 10)
    started = time.time()
    second = asyncio.create_task(rooms.command("invite_to_room", alice, data, id="slow"))
    await asyncio.wait_for(waited.wait(), 10)
    release.set()
    replies = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert [(r.ok, r.error) for r in replies] == [({}, None)] * 2
    assert len(rooms.events("room.member_joined")) == 1


async def test_rooms_created_and_people_added_per_hour_are_limited(rooms, monkeypatch):
    """Over the hour's limits (settings) create_room and invite_to_room are refused rate_limited,
    with a message saying which limit; not remembered: the same id acts once the hour has passed."""
    rooms.runtime.settings = rooms.runtime.settings.model_copy(
        update={"max_rooms_per_hour": 2, "max_invites_per_hour": 3}
    )
    alice, bob, cy, dee, eve = rooms.add_users("Alice", "Bob", "Cy", "Dee", "Eve")
    den = (await rooms.ok("create_room", alice, {"name": "Den", "participant_ids": [bob.id]}))["room"]["id"]
    await rooms.ok("create_room", alice, {"name": "Two", "participant_ids": []})
    third = await rooms.command("create_room", alice, {"name": "Three", "participant_ids": []}, id="third")
    assert third.error is not None and third.error.code == "rate_limited", third
    assert "rooms created" in third.error.message
    assert (await rooms.ok("create_room", bob, {"name": "Bob's", "participant_ids": []}))["room"], "per user"
    await rooms.ok("invite_to_room", alice, {"room_id": den, "user_id": cy.id})
    await rooms.ok("invite_to_room", alice, {"room_id": den, "user_id": dee.id})
    over = await rooms.command("invite_to_room", alice, {"room_id": den, "user_id": eve.id}, id="over")
    assert over.error is not None and over.error.code == "rate_limited" and "people added" in over.error.message
    assert len(rooms.events("room.member_joined")) == 2

    later = datetime.now(UTC) + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(rooms.runtime, "now", lambda: later)
    assert await rooms.ok("invite_to_room", alice, {"room_id": den, "user_id": eve.id}, id="over") == {}
    assert (await rooms.ok("create_room", alice, {"name": "Three", "participant_ids": []}, id="third"))["room"]
