"""Workers killed with SIGKILL in the middle of a burst (messaging, meetups, polls, notifications, one
after the other; the stack's supervisor restarts each): nothing acknowledged is lost, nothing is
applied twice, nobody is pushed the same item twice."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from e2e.helpers import new_user
from support.broker import wait_until_idle
from support.fcm import write_service_account

from faults.helpers import (
    RETRYABLE,
    UNLIMITED,
    Burst,
    Persistent,
    assert_gap_free,
    assert_stored_once,
    consuming_again,
    history,
)

pytestmark = pytest.mark.e2e

KILLED = ("messaging", "meetups", "polls", "notifications")
RESTARTED_WITHIN = 30.0  # seconds: the supervisor's first backoff, then a cold start against the stand-in


def next_week() -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def create_polls(organizer: Persistent, meetup_id: str, stop: asyncio.Event) -> list[dict]:
    """Polls created one after the other until ``stop``, each retried until ``ok``."""
    polls = []
    while not stop.is_set():
        data = {
            "meetup_id": meetup_id,
            "poll_type": "generic",
            "description": f"Question {len(polls)}?",
            "choices": ["yes", "no"],
        }
        polls.append((await organizer.ok("create_poll", data))["poll"])
    return polls


async def test_killed_workers_lose_nothing_acknowledged_and_repeat_nothing(start_stack, private_broker, fcm, tmp_path):
    account = write_service_account(tmp_path, fcm.url + "/token")
    stack = await start_stack(rate_limit_per_minute=UNLIMITED, fcm_credentials=str(account), fcm_endpoint=fcm.endpoint)
    print("stack logs:", stack.log_dir)  # shown when the test fails
    reply_within = stack.settings.request_timeout_seconds + 5
    ann = await Persistent.connect(stack.ws_url, new_user("Ann"), reply_within)
    bob = await Persistent.connect(stack.ws_url, new_user("Bob"), reply_within)
    token = f"fcm-{uuid.uuid4().hex}"
    await bob.ok("register_device", {"token": token, "platform": "android"})
    data = {"name": "Dinner", "location": "Park", "takes_place_on": next_week(), "attendee_ids": [bob.id]}
    meetup = (await ann.ok("create_meetup", data))["meetup"]
    await bob.close()  # offline from now on: every item reaches him as a push
    await wait_until_idle(stack.settings.namespace, node=private_broker.node)  # notifications knows it

    burst = Burst(ann, meetup["room_id"]).start()
    stop_polls = asyncio.Event()
    polls = asyncio.create_task(create_polls(ann, meetup["id"], stop_polls))
    for name in (f"{worker}-1" for worker in KILLED):
        await burst.reached(len(burst.acked) + 10)
        starts = stack.supervisor.starts(name)
        os.kill(stack.supervisor.pid(name), signal.SIGKILL)  # type: ignore[arg-type]
        await stack.supervisor.wait_started(name, starts + 1, RESTARTED_WITHIN)
    await burst.reached(len(burst.acked) + 10)  # flowing again after the last restart
    stop_polls.set()
    acked = await burst.stop()
    created = await polls
    await consuming_again(private_broker, stack.settings, RESTARTED_WITHIN)

    # Nothing acknowledged is lost, nothing is stored twice.
    items = await history(ann, meetup["room_id"])
    assert_gap_free(items)
    assert_stored_once(items, acked)
    # Each poll is created once and announced once (so is the meetup).
    after = (await ann.ok("get_meetup", {"meetup_id": meetup["id"]}))["meetup"]
    assert sorted(poll["id"] for poll in after["polls"]) == sorted(poll["id"] for poll in created)
    assert len(created) >= 2 and len({poll["description"] for poll in created}) == len(created)
    announced = Counter(item["content"] for item in items if item["kind"] == "announcement")
    for poll in created:
        assert [n for text, n in announced.items() if f": {poll['description']} (" in text] == [1], poll
    assert sum(n for text, n in announced.items() if "planned Dinner" in text) == 1
    assert sorted(alert["poll_id"] for alert in after["alerts"]) == sorted(poll["id"] for poll in created)

    # Nobody is pushed one item twice. Every item, the ones a crash left unpublished too, has been
    # published and handled once the relay has run and the queues are empty.
    last = max(item["seq"] for item in acked.values())
    await fcm.wait_for(lambda _: str(last) in {push.message["data"]["seq"] for push in fcm.sends_to(token)})
    await wait_until_idle(stack.settings.namespace, node=private_broker.node)
    pushed = Counter(push.message["data"]["seq"] for push in fcm.sends_to(token))
    assert pushed and max(pushed.values()) == 1, pushed
    by_seq = {str(item["seq"]): item for item in items}
    for push in fcm.sends_to(token):
        assert push.message["notification"]["body"].endswith(by_seq[push.message["data"]["seq"]]["content"])
    print(f"{len(acked)} messages, {len(created)} polls, {len(pushed)} pushes; retries {dict(ann.retried)}")
    assert set(ann.retried) <= RETRYABLE  # every retry followed a reply: no connection was dropped
    await ann.close()
