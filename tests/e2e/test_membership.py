"""A leave answered ok holds at once in every worker that copies a room's members (messaging,
meetups, polls), even when one of them was stopped while it was asked (ARCHITECTURE.md: the rare
path pays): until that worker has applied it, the answer is not ok, and a retry with the same id
completes it."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.client import Client

from e2e.helpers import new_user

pytestmark = pytest.mark.e2e

TIMEOUT = 2.0  # the stack's request timeout: a follower that does not answer makes the leave fail fast
NOT_YET = {"unavailable", "timeout"}  # PROTOCOL.md: not outcomes; retry with the same id


@contextmanager
def paused(stack: Any, worker: str) -> Iterator[None]:
    pid = stack.supervisor.pid(f"{worker}-1")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def until_ok(client: Client, type: str, data: dict[str, Any], id: str) -> None:
    """``type`` retried with the same id, as a careful client does, until it is ok."""
    async with asyncio.timeout(60):
        while (frame := await client.request(type, data, id=id, timeout=TIMEOUT * 5))["type"] != "ok":
            assert frame["error"]["code"] in NOT_YET, frame
            await asyncio.sleep(0.2)


async def leave_while_stopped(stack: Any, leaver: Client, room_id: str, worker: str) -> None:
    """A leave, and a retry of it, while ``worker`` is stopped: neither is ok. Once it runs again,
    the retry is ok."""
    leave, request_id = {"room_id": room_id}, uuid.uuid4().hex
    with paused(stack, worker):
        for _ in range(2):
            frame = await leaver.request("leave_room", leave, id=request_id, timeout=TIMEOUT * 5)
            assert frame["type"] == "error" and frame["error"]["code"] in NOT_YET, (worker, frame)
    await until_ok(leaver, "leave_room", leave, request_id)


async def test_a_leave_is_ok_only_once_every_follower_has_applied_it(start_stack):
    """Each follower stopped in turn during a leave: after the ok, the leaver can no longer post
    (messaging), see the meetup or be made a poll's participant (meetups), or vote (polls)."""
    stack = await start_stack(request_timeout_seconds=TIMEOUT)
    ann, bob, cy, dan = [await Client.connect(stack.ws_url, dev_user=new_user(n)) for n in ("Ann", "Bob", "Cy", "Dan")]
    try:
        week = (datetime.now(UTC) + timedelta(days=7)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        attendees = [c.user["id"] for c in (bob, cy, dan)]
        data = {"name": "Picnic", "location": "Park", "takes_place_on": week, "attendee_ids": attendees}
        meetup = (await ann.ok("create_meetup", data))["meetup"]
        meetup_id, room_id = meetup["id"], meetup["room_id"]
        question = {"meetup_id": meetup_id, "poll_type": "generic", "description": "Food?", "choices": ["A", "B"]}
        poll = (await ann.ok("create_poll", question))["poll"]

        await leave_while_stopped(stack, bob, room_id, "messaging")
        sent = await bob.error("send_message", {"room_id": room_id, "content": "still here?"})
        assert sent["code"] == "forbidden"

        await leave_while_stopped(stack, cy, room_id, "meetups")
        assert (await cy.error("get_meetup", {"meetup_id": meetup_id}))["code"] == "forbidden"
        later = (await ann.ok("create_poll", {**question, "description": "Drinks?"}))["poll"]
        assert cy.user["id"] not in later["participant_ids"]

        await leave_while_stopped(stack, dan, room_id, "polls")
        voted = await dan.error("vote_poll", {"poll_id": poll["id"], "choice_index": 0})
        assert voted["code"] == "forbidden"
    finally:
        for client in (ann, bob, cy, dan):
            await client.close()
