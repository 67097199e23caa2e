"""The meetups and polls workers over the real broker, asked directly as other workers ask them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest

from boochat.rpc import RpcClient
from contracts.envelope import Command, Reply
from contracts.routing import Names

pytestmark = pytest.mark.integration


class Asker:
    """Sends commands to workers on behalf of users, as the gateway or a worker does."""

    def __init__(self, rpc: RpcClient, channel: aio_pika.abc.AbstractChannel, names: Names) -> None:
        self.rpc, self.channel, self.names = rpc, channel, names

    async def listen(self, key: str) -> aio_pika.abc.AbstractQueue:
        """A private queue of the domain events routed by ``key``."""
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.names.events, routing_key=key)
        return queue

    async def ask(self, worker: str, type: str, user_id: str, data: dict[str, Any], id: str = "") -> Reply:
        command = Command(type=type, id=id or uuid.uuid4().hex, user_id=user_id, data=data)
        return await self.rpc.call(worker, command)

    async def ok(self, worker: str, type: str, user_id: str, data: dict[str, Any], id: str = "") -> dict[str, Any]:
        reply = await self.ask(worker, type, user_id, data, id)
        assert reply.error is None, reply.error
        return reply.ok or {}

    async def user(self, name: str) -> str:
        user_id = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        await self.ok("users", "sign_in", user_id, {"user": {"id": user_id, "name": name}})
        return user_id


@pytest.fixture
async def asker(stack: Any) -> AsyncIterator[Asker]:
    connection = await aio_pika.connect_robust(stack.settings.amqp_url)
    channel = await connection.channel()
    rpc = RpcClient(channel, stack.settings.names, 10.0)
    await rpc.start()
    yield Asker(rpc, channel, stack.settings.names)
    await connection.close()


def future(days: int = 7) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def meetup_of(asker: Asker, organizer: str, *attendees: str) -> dict[str, Any]:
    data = {"name": "Picnic", "location": "Park", "takes_place_on": future(), "attendee_ids": list(attendees)}
    return (await asker.ok("meetups", "create_meetup", organizer, data))["meetup"]


async def test_meetup_access_answers_attendees_only(asker):
    """meetup_access: ids, room, organizer and attendees for an attendee; forbidden or not_found else."""
    ann, bob, eve = await asker.user("Ann"), await asker.user("Bob"), await asker.user("Eve")
    meetup = await meetup_of(asker, ann, bob)
    access = await asker.ok("meetups", "meetup_access", bob, {"meetup_id": meetup["id"]})
    assert access == {
        "meetup_id": meetup["id"],
        "room_id": meetup["room_id"],
        "organizer_id": ann,
        "attendee_ids": [ann, bob],
    }
    refused = await asker.ask("meetups", "meetup_access", eve, {"meetup_id": meetup["id"]})
    assert refused.error is not None and refused.error.code == "forbidden"
    missing = await asker.ask("meetups", "meetup_access", eve, {"meetup_id": "nope"})
    assert missing.error is not None and missing.error.code == "not_found"


async def test_meetup_room_is_the_rooms_workers(asker):
    """The meetup's room exists (as messaging copies it from rooms) with the organizer and the attendees."""
    ann, bob = await asker.user("Ann"), await asker.user("Bob")
    meetup = await meetup_of(asker, ann, bob, bob, ann)
    room = (await asker.ok("messaging", "get_room", bob, {"room_id": meetup["room_id"]}))["room"]
    assert (room["name"], room["participant_ids"]) == ("Picnic", [ann, bob])


async def test_retry_after_the_room_was_opened_completes_the_meetup(asker):
    """A create_meetup that stopped after opening its room completes on retry with that same room."""
    ann, bob = await asker.user("Ann"), await asker.user("Bob")
    request_id = uuid.uuid4().hex
    meetup_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{ann}\x1fcreate_meetup\x1f{request_id}").hex
    room_id = uuid.uuid5(uuid.NAMESPACE_URL, meetup_id).hex
    opened = {"room_id": room_id, "meetup_id": meetup_id, "name": "Picnic", "participant_ids": [bob]}
    await asker.ok("rooms", "open_meetup_room", ann, opened, id=request_id)
    data = {"name": "Picnic", "location": "Park", "takes_place_on": future(), "attendee_ids": [bob]}
    meetup = (await asker.ok("meetups", "create_meetup", ann, data, id=request_id))["meetup"]
    assert (meetup["id"], meetup["room_id"]) == (meetup_id, room_id)
    assert [a["user_id"] for a in meetup["attendees"]] == [ann, bob]


async def test_racing_last_votes_close_the_poll_once(asker):
    """Many participants voting at once: every vote counts, and exactly one vote closes the poll."""
    users = [await asker.user(f"U{i}") for i in range(6)]
    meetup = await meetup_of(asker, *users)
    data = {"meetup_id": meetup["id"], "poll_type": "generic", "description": "?", "choices": ["a", "b", "c"]}
    poll = (await asker.ok("polls", "create_poll", users[0], data))["poll"]
    events = await asker.listen("poll.#")
    votes = [
        asker.ok("polls", "vote_poll", u, {"poll_id": poll["id"], "choice_index": i % 3}) for i, u in enumerate(users)
    ]
    assert await asyncio.gather(*votes) == [{}] * len(users)
    # Each vote's events were published with confirms before its reply: they are all queued now.
    # Delivery is at least once (a writer also publishes what an earlier writer had not yet): by id.
    by_id = {}
    while (message := await events.get(no_ack=True, fail=False)) is not None:
        event = json.loads(message.body)
        by_id[event["event_id"]] = event
    seen = list(by_id.values())
    closed = [e for e in seen if e["type"] == "poll.closed" and e["aggregate_id"] == poll["id"]]
    assert len(closed) == 1 and len(closed[0]["payload"]["poll"]["votes"]) == len(users)
    assert closed[0]["payload"]["winner"] == "a"  # 2 votes each: ties go to the lowest index
    assert len([e for e in seen if e["type"] == "poll.vote_cast"]) == len(users)
    again = await asker.ask("polls", "close_poll", users[0], {"poll_id": poll["id"]})
    assert again.error is not None and again.error.code == "conflict"
