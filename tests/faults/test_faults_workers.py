"""Workers killed with SIGKILL in the middle of a burst (both messaging replicas, meetups, polls,
notifications, one after the other; the stack's supervisor restarts each), with two gateways and a
member coming and going: nothing acknowledged is lost, nothing is applied twice, nobody is pushed the
same item twice, membership is what the last ok said, presence converges.

Each kill meets commands in flight (the clients count what they sent and have no reply for); what
the killed process held unacknowledged is redelivered to its twin or to its next start."""

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
    Comings,
    Persistent,
    assert_gap_free,
    assert_stored_once,
    consuming_again,
    history,
    membership_and_presence_hold,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]  # five freezes and kills, each waits for a retry

KILLED = ("messaging-1", "messaging-2", "meetups-1", "polls-1", "notifications-1")
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
    stack = await start_stack(
        scale={"messaging": 2, "gateway": 2},
        rate_limit_per_minute=UNLIMITED,
        fcm_credentials=str(account),
        fcm_endpoint=fcm.endpoint,
    )
    print("stack logs:", stack.log_dir)  # shown when the test fails
    reply_within = stack.settings.request_timeout_seconds + 5
    first, second = stack.ws_urls
    ann = await Persistent.connect(first, new_user("Ann"), reply_within)
    bob = await Persistent.connect(second, new_user("Bob"), reply_within)
    cat = await Persistent.connect(second, new_user("Cat"), reply_within)
    token = f"fcm-{uuid.uuid4().hex}"
    await bob.ok("register_device", {"token": token, "platform": "android"})
    data = {"name": "Dinner", "location": "Park", "takes_place_on": next_week(), "attendee_ids": [bob.id]}
    meetup = (await ann.ok("create_meetup", data))["meetup"]
    await bob.close()  # offline from now on: every item reaches him as a push
    await wait_until_idle(stack.settings.namespace, node=private_broker.node)  # notifications knows it

    burst = Burst(ann, meetup["room_id"]).start()
    stop_polls = asyncio.Event()
    polls = asyncio.create_task(create_polls(ann, meetup["id"], stop_polls))
    comings = Comings(ann, cat, meetup["room_id"])
    in_flight: list[int] = []  # Ann's commands without a reply when each kill struck
    for name in KILLED:
        await burst.reached(len(burst.acked) + 10)
        starts = stack.supervisor.starts(name)
        pid = stack.supervisor.pid(name)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        in_flight.append(ann.in_flight)
        await stack.supervisor.wait_started(name, starts + 1, RESTARTED_WITHIN)
    await burst.reached(len(burst.acked) + 10)  # flowing again after the last restart
    assert all(in_flight), f"commands in flight at each kill: {in_flight}"
    stop_polls.set()
    acked = await burst.stop()
    created = await polls
    await comings.stop()  # the workers' queues can go idle
    await consuming_again(private_broker, stack.settings, RESTARTED_WITHIN)

    # What the frozen and killed workers left in their queues is handled before anything is read.
    await wait_until_idle(stack.settings.namespace, timeout=120, node=private_broker.node)
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
    await membership_and_presence_hold(comings, [ann], offline={bob.id})
    await ann.close()
