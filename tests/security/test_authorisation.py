"""Authorisation as a property, against the running stack through real WebSocket clients.

Hypothesis drives random sequences of room, message, meetup and poll actions by four fresh users,
one action at a time, and checks every reply and every event each user receives against a model of
who is in what:

- a reply is what membership at that moment says: members act (``ok``, or ``conflict`` for what
  the rules refuse), everyone else gets ``forbidden``, and a page of items is the room's own;
- an event is legitimate only for a user who was in its room, meetup or poll when it happened.
  Events carrying a snapshot (a room, a meetup, a poll) must name the recipient among its members.
  Others are placed in time by what caused them: an item by the send that stored it, or, for an
  announcement, between the actions that stored the known items around its ``seq``; a departure by
  the leave; a vote by the vote. Membership runs from the start of the action that added a user to
  the reply of the one that removed them, so events still in flight at a departure are allowed.

Each example ends with a barrier: a member of every room still occupied sends a last message and
waits until every member has it (a room's events arrive in order), so the room's events are in.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.broker import held_back, wait_until_idle
from support.client import Client

from workers.meetups.app import WORKER as MEETUPS
from workers.messaging.app import WORKER as MESSAGING
from workers.polls.app import WORKER as POLLS

pytestmark = pytest.mark.e2e

USERS = 4
ROOM_EVENTS = ("room.created", "room.member_joined", "room.member_left", "room.updated", "room.item_added")
OTHER_EVENTS = ("room.read", "meetup.created", "meetup.updated", "poll.created", "poll.vote_cast", "poll.closed")
KINDS = (  # repeated: drawn more often
    "create_room",
    "invite_to_room",
    "invite_to_room",
    "leave_room",
    "leave_room",
    "send_message",
    "send_message",
    "get_room_items",
    "mark_room_read",
    "create_meetup",
    "create_poll",
    "create_poll",
    "vote_poll",
    "vote_poll",
    "vote_poll",
)

Window = tuple[float, float]  # (earliest, latest) moment, time.monotonic()


@dataclass(frozen=True)
class Action:
    kind: str
    actor: int
    target: int  # picks a room, meetup or poll: one the actor is in, was in, or any (see Model.pick)
    other: int  # picks a user (invitee) or a choice
    group: int  # a bit mask of users (participants, attendees)


ACTIONS = st.builds(
    Action,
    st.sampled_from(KINDS),
    st.integers(0, USERS - 1),
    st.integers(0, 63),
    st.integers(0, 63),
    st.integers(0, 2**USERS - 1),
)


@dataclass
class Room:
    id: str
    intervals: dict[str, list[list[float]]] = field(default_factory=dict)  # user -> [[from, until]]
    items: dict[int, Window] = field(default_factory=dict)  # seq of a known item -> when it was stored
    leaves: dict[str, list[Window]] = field(default_factory=dict)  # user -> their leave actions
    created: float = 0.0

    def members(self) -> set[str]:
        return {user for user, spans in self.intervals.items() if spans and spans[-1][1] == math.inf}

    def join(self, user: str, at: float) -> None:
        self.intervals.setdefault(user, []).append([at, math.inf])

    def leave(self, user: str, window: Window) -> None:
        self.intervals[user][-1][1] = window[1]
        self.leaves.setdefault(user, []).append(window)

    def was_member(self, user: str, window: Window) -> bool:
        return any(start <= window[1] and window[0] <= end for start, end in self.intervals.get(user, []))

    def item_window(self, seq: int) -> Window:
        """When item ``seq`` can have been stored: after the known items before it, before those after."""
        if seq in self.items:
            return self.items[seq]
        earlier = [window[0] for known, window in self.items.items() if known < seq]
        later = [window[1] for known, window in self.items.items() if known > seq]
        return (max(earlier, default=self.created), min(later, default=math.inf))


@dataclass
class Poll:
    id: str
    room: Room
    participants: dict[str, float]  # user -> until when (a leaver stops for good)
    created: float
    voted: set[str] = field(default_factory=set)
    votes: dict[str, Window] = field(default_factory=dict)

    def was_participant(self, user: str, window: Window) -> bool:
        return user in self.participants and self.created <= window[1] and window[0] <= self.participants[user]


class Model:
    def __init__(self, clients: list[Client]) -> None:
        self.clients = clients
        self.users = [client.user["id"] for client in clients]  # type: ignore[index]
        self.rooms: dict[str, Room] = {}
        self.meetups: dict[str, Room] = {}  # meetup id -> its room
        self.polls: dict[str, Poll] = {}
        self.trace: list[str] = []

    def pick(self, things: dict[str, Any], index: int, actor: str) -> Any:
        """One of ``things`` (rooms or polls) by ``index``: a third of the time one the actor is in,
        a third one they were in, else any; so members act and leavers try to go on acting."""
        now = [t for t in things.values() if self.inside(t, actor)]
        before = [t for t in things.values() if self.was_inside(t, actor) and not self.inside(t, actor)]
        choices = [now, before, list(things.values())][index % 3] or list(things.values())
        return choices[index // 3 % len(choices)] if choices else None

    @staticmethod
    def inside(thing: Room | Poll, user: str) -> bool:
        return user in thing.members() if isinstance(thing, Room) else thing.participants.get(user) == math.inf

    @staticmethod
    def was_inside(thing: Room | Poll, user: str) -> bool:
        return user in (thing.intervals if isinstance(thing, Room) else thing.participants)

    def group(self, mask: int, actor: str) -> list[str]:
        return [user for bit, user in enumerate(self.users) if mask >> bit & 1 and user != actor]

    async def run(self, action: Action) -> None:
        actor = self.users[action.actor]
        client = self.clients[action.actor]
        started = time.monotonic()
        step = getattr(self, action.kind)
        note = await step(action, actor, client, started)
        self.trace.append(f"{action.kind} by {actor}: {note}")

    def expect(self, frame: dict[str, Any], allowed: bool, refusal: str = "forbidden") -> bool:
        """``ok`` when ``allowed``, else the error ``refusal``; whether it was ``ok``."""
        outcome = "ok" if frame["type"] == "ok" else frame["error"]["code"]
        want = "ok" if allowed else refusal
        assert outcome == want, f"expected {want}, got {frame}\n" + "\n".join(self.trace)
        return outcome == "ok"

    # Actions ------------------------------------------------------------------------------------

    async def create_room(self, action: Action, actor: str, client: Client, started: float) -> str:
        others = self.group(action.group, actor)
        room = (await client.ok("create_room", {"name": "Den", "participant_ids": others}))["room"]
        self.rooms[room["id"]] = model = Room(room["id"], created=started)
        for user in (actor, *others):
            model.join(user, started)
        return f"{room['id'][:6]} with {others}"

    async def invite_to_room(self, action: Action, actor: str, client: Client, started: float) -> str:
        if (room := self.pick(self.rooms, action.target, actor)) is None:
            return "no room"
        invitee = self.users[action.other % USERS]
        frame = await client.request("invite_to_room", {"room_id": room.id, "user_id": invitee})
        member = actor in room.members()
        if self.expect(frame, member and invitee not in room.members(), "conflict" if member else "forbidden"):
            room.join(invitee, started)
        return f"{invitee} to {room.id[:6]}: {frame['type']}"

    async def leave_room(self, action: Action, actor: str, client: Client, started: float) -> str:
        if (room := self.pick(self.rooms, action.target, actor)) is None:
            return "no room"
        frame = await client.request("leave_room", {"room_id": room.id})
        if self.expect(frame, actor in room.members()):
            window = (started, time.monotonic())
            room.leave(actor, window)
            for poll in self.polls.values():
                if poll.room is room and poll.participants.get(actor) == math.inf:
                    poll.participants[actor] = window[1]
        return f"{room.id[:6]}: {frame['type']}"

    async def send_message(self, action: Action, actor: str, client: Client, started: float) -> str:
        if (room := self.pick(self.rooms, action.target, actor)) is None:
            return "no room"
        frame = await client.request("send_message", {"room_id": room.id, "content": "hi"})
        if self.expect(frame, actor in room.members()):
            room.items[frame["data"]["item"]["seq"]] = (started, time.monotonic())
        return f"{room.id[:6]}: {frame['type']}"

    async def get_room_items(self, action: Action, actor: str, client: Client, started: float) -> str:
        if (room := self.pick(self.rooms, action.target, actor)) is None:
            return "no room"
        frame = await client.request("get_room_items", {"room_id": room.id})
        if self.expect(frame, actor in room.members()):
            assert {item["room_id"] for item in frame["data"]["items"]} <= {room.id}, frame
        return f"{room.id[:6]}: {frame['type']}"

    async def mark_room_read(self, action: Action, actor: str, client: Client, started: float) -> str:
        if (room := self.pick(self.rooms, action.target, actor)) is None:
            return "no room"
        frame = await client.request("mark_room_read", {"room_id": room.id})
        self.expect(frame, actor in room.members())
        return f"{room.id[:6]}: {frame['type']}"

    async def create_meetup(self, action: Action, actor: str, client: Client, started: float) -> str:
        others = self.group(action.group, actor)
        when = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        data = {"name": "Picnic", "location": "Park", "takes_place_on": when, "attendee_ids": others}
        meetup = (await client.ok("create_meetup", data))["meetup"]
        self.rooms[meetup["room_id"]] = room = Room(meetup["room_id"], created=started)
        self.meetups[meetup["id"]] = room
        for user in (actor, *others):
            room.join(user, started)
        return f"{meetup['id'][:6]} (room {room.id[:6]}) with {others}"

    async def create_poll(self, action: Action, actor: str, client: Client, started: float) -> str:
        rooms = {room.id: room for room in self.meetups.values()}
        if (room := self.pick(rooms, action.target, actor)) is None:
            return "no meetup"
        meetup_id = next(meetup for meetup, its_room in self.meetups.items() if its_room is room)
        data = {"meetup_id": meetup_id, "poll_type": "generic", "description": "Which?", "choices": ["a", "b"]}
        frame = await client.request("create_poll", data)
        if self.expect(frame, actor in room.members()):
            poll = frame["data"]["poll"]
            assert set(poll["participant_ids"]) == room.members(), (poll, room.members())
            self.polls[poll["id"]] = Poll(poll["id"], room, dict.fromkeys(room.members(), math.inf), started)
        return f"in {meetup_id[:6]}: {frame['type']}"

    async def vote_poll(self, action: Action, actor: str, client: Client, started: float) -> str:
        if (poll := self.pick(self.polls, action.target, actor)) is None:
            return "no poll"
        frame = await client.request("vote_poll", {"poll_id": poll.id, "choice_index": action.other % 2})
        participant = poll.participants.get(actor) == math.inf
        if self.expect(frame, participant and actor not in poll.voted, "conflict" if participant else "forbidden"):
            poll.voted.add(actor)
            poll.votes[actor] = (started, time.monotonic())
        return f"{poll.id[:6]}: {frame['type']}"

    # Events -------------------------------------------------------------------------------------

    async def barrier(self) -> None:
        """Every room's events have reached its members: a last message, seen by all of them."""
        for room in self.rooms.values():
            members = room.members()
            if not members:
                continue
            sender = self.clients[self.users.index(min(members))]
            started = time.monotonic()
            item = (await sender.ok("send_message", {"room_id": room.id, "content": "last"}))["item"]
            room.items[item["seq"]] = (started, time.monotonic())
            for user in members:
                await self.clients[self.users.index(user)].expect_event(
                    "room.item_added", lambda d, item=item: d["item"]["id"] == item["id"], timeout=10
                )

    def check_events(self) -> None:
        for user, client in zip(self.users, self.clients, strict=True):
            for name in (*ROOM_EVENTS, *OTHER_EVENTS):
                for data in client.pending(name):
                    problem = self.illegitimate(user, name, data)
                    assert problem is None, f"{user} got {name} {data}: {problem}\n" + "\n".join(self.trace)

    def illegitimate(self, user: str, name: str, data: dict[str, Any]) -> str | None:
        """Why ``user`` should not have had this event, or None."""
        if name in ("room.created", "room.member_joined", "room.updated"):
            return None if user in data["room"]["participant_ids"] else "not in the room it carries"
        if name in ("meetup.created", "meetup.updated"):
            attendees = {a["user_id"] for a in data["meetup"]["attendees"]}
            return None if user in attendees else "not among the meetup's attendees"
        if name in ("poll.created", "poll.closed"):
            return None if user in data["poll"]["participant_ids"] else "not among the poll's participants"
        if name == "room.read":
            return None  # one's own read mark: routed to that user only
        if name == "room.item_added":
            room = self.rooms.get(data["item"]["room_id"])
            if room is None:
                return "a room nobody here made"
            window = room.item_window(data["item"]["seq"])
            return None if room.was_member(user, window) else f"not a member while it was stored {window}"
        if name == "room.member_left":
            room = self.rooms.get(data["room_id"])
            if room is None:
                return "a room nobody here made"
            if data["user_id"] == user:
                return None
            leaves = room.leaves.get(data["user_id"], [])
            return None if any(room.was_member(user, w) for w in leaves) else "not a member when they left"
        if name == "poll.vote_cast":
            poll = self.polls.get(data["poll_id"])
            if poll is None or data["user_id"] not in poll.votes:
                return "a vote nobody here cast"
            window = poll.votes[data["user_id"]]
            return None if poll.was_participant(user, window) else "not a participant when it was cast"
        return f"an event the model does not know: {name}"


# Every example starts with a meetup of everyone with a poll, and a room of two: something to act on.
PRELUDE = [Action("create_meetup", 0, 0, 0, 2**USERS - 1), Action("create_poll", 0, 0, 0, 0)]
PRELUDE.append(Action("create_room", 1, 0, 0, 0b100))


async def play(ws_url: str, actions: list[Action]) -> None:
    run = uuid.uuid4().hex[:6]
    clients = [
        await Client.connect(ws_url, dev_user={"id": f"auth-{run}-{n}", "name": f"User {n}"}) for n in range(USERS)
    ]
    try:
        model = Model(clients)
        for action in PRELUDE + actions:
            await model.run(action)
        await model.barrier()
        model.check_events()
    finally:
        for client in clients:
            await client.close()


def lagging(stack) -> dict[str, tuple[str, ...]]:
    """The event queues through which messaging, meetups and polls learn of membership changes, with
    the event types each takes from rooms."""
    names = stack.settings.names
    return {
        names.reaction_queue("messaging", "copy_rooms"): MESSAGING.projections["copy_rooms"].types,
        names.reaction_queue("messaging", "follow_rooms"): MESSAGING.reactions["follow_rooms"].types,
        names.reaction_queue("meetups", "follow_room"): MEETUPS.reactions["follow_room"].types,
        names.reaction_queue("polls", "remove_leaver"): POLLS.reactions["remove_leaver"].types,
    }


async def test_nobody_reads_posts_votes_or_hears_outside_what_they_are_in(stack) -> None:
    """Random sequences of actions by four users: every reply and every event agrees with the model,
    and it still does while rooms' events reach messaging, meetups and polls only after the whole run
    (held back): what they must know of a membership change at its reply, rooms hands over."""
    loop = asyncio.get_running_loop()

    # No shrinking: each replay drives the live stack, and a failure already carries its trace of actions.
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(ACTIONS, min_size=10, max_size=20))
    def property(actions: list[Action]) -> None:
        asyncio.run_coroutine_threadsafe(play(stack.ws_url, actions), loop).result(timeout=120)

    await asyncio.to_thread(property)
    async with held_back(stack.settings.amqp_url, stack.settings.names.events, lagging(stack)):
        await asyncio.to_thread(property)
    await wait_until_idle(stack.settings.namespace)  # the late events are applied before the next test


async def test_a_leaver_cannot_vote_or_see_the_meetup_while_event_queues_lag(stack) -> None:
    """After the ``leave_room`` reply a leaver's vote and ``get_meetup`` are forbidden, and after the
    ``invite_to_room`` reply the newcomer can create a poll, even while the meetups and polls workers
    have a backlog of room events (rooms hands membership changes to them before it replies)."""
    run = uuid.uuid4().hex[:6]
    ann, bob, cat = [
        await Client.connect(stack.ws_url, dev_user={"id": f"lag-{run}-{n}", "name": n}) for n in ("Ann", "Bob", "Cat")
    ]
    when = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    data = {"name": "Picnic", "location": "Park", "takes_place_on": when, "attendee_ids": [bob.user["id"]]}
    meetup = (await ann.ok("create_meetup", data))["meetup"]
    choices = {"meetup_id": meetup["id"], "poll_type": "generic", "description": "Which?", "choices": ["a", "b"]}
    poll = (await ann.ok("create_poll", choices))["poll"]
    names = stack.settings.names
    lagging = [names.reaction_queue("polls", "remove_leaver"), names.reaction_queue("meetups", "follow_room")]
    connection = await aio_pika.connect(stack.settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=False)
        for number in range(3000):  # departures from rooms that are no meetup's: work that changes nothing
            ghost = {"id": f"ghost-{run}-{number}", "name": "G", "image_url": None, "participant_ids": []}
            event = {
                "event_id": uuid.uuid4().hex,
                "type": "room.member_left",
                "aggregate_id": ghost["id"],
                "version": 2,
                "occurred_at": "2026-01-01T00:00:00.000Z",
                "payload": {"room": {**ghost, "created_by": "g", "created_at": "2026-01-01T00:00:00.000Z"},
                            "user_id": "g", "user_name": "G"},
            }  # fmt: skip
            body = aio_pika.Message(json.dumps(event).encode(), content_type="application/json")
            for queue in lagging:
                await channel.default_exchange.publish(body, routing_key=queue)

        await bob.ok("leave_room", {"room_id": meetup["room_id"]})
        assert (await bob.error("vote_poll", {"poll_id": poll["id"], "choice_index": 0}))["code"] == "forbidden"
        assert (await bob.error("get_meetup", {"meetup_id": meetup["id"]}))["code"] == "forbidden"
        await ann.ok("invite_to_room", {"room_id": meetup["room_id"], "user_id": cat.user["id"]})
        await cat.ok("create_poll", choices)
        backlog = [(await channel.declare_queue(q, passive=True)).declaration_result.message_count for q in lagging]
        assert all(backlog), f"no backlog left to lag behind: {backlog}"
    finally:
        await connection.close()
        for client in (ann, bob, cat):
            await client.close()
    await wait_until_idle(stack.settings.namespace)  # the ghosts are gone before the next test
