"""Broker faults on a private node: connections closed by the broker, and the broker app stopped and
started, while messages flow and a member comes and goes, with two messaging replicas and two
gateways. Each fault is shown to hit a command in flight (its sender had to retry). Every command
gets ``ok`` or a retryable error; retried with the same ids, every acknowledged message is stored
exactly once with gap-free ``seq``; membership is what the last ok said; presence converges; every
worker consumes again within 15 s."""

from __future__ import annotations

import asyncio

import pytest
from e2e.helpers import new_user

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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CONSUMING_AGAIN = 15.0  # seconds after the last fault


SCALE = {"messaging": 2, "gateway": 2}  # the fault meets replicas and a user on each gateway


async def room_of(stack):
    """Ann on the first gateway, Bob and Cat on the second; a room of Ann and Bob."""
    reply_within = stack.settings.request_timeout_seconds + 5
    print("stack logs:", stack.log_dir)  # shown when the test fails
    first, second = stack.ws_urls
    ann = await Persistent.connect(first, new_user("Ann"), reply_within)
    bob = await Persistent.connect(second, new_user("Bob"), reply_within)
    cat = await Persistent.connect(second, new_user("Cat"), reply_within)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob.id]}))["room"]
    return ann, bob, cat, room


async def strike(fault, burst: Burst, within: float, attempts: int = 5) -> None:
    """Inject ``fault`` until it hits a command in flight (the sender had to retry one), at most
    ``attempts`` times, each once messages flow again."""
    for _ in range(attempts):
        await burst.reached(len(burst.acked) + 10)
        retried = burst.sender.retried.total()
        await fault()
        try:
            await burst.sender.wait_retried(retried + 1, timeout=within)
            return
        except TimeoutError:
            continue
    raise AssertionError(f"the fault never met a command in flight in {attempts} tries")


def consumers_back(private_broker, stack) -> asyncio.Task[None]:
    """Started right after the last fault: every worker queue has a consumer within 15 s."""
    return asyncio.create_task(consuming_again(private_broker, stack.settings, CONSUMING_AGAIN))


async def nothing_lost_or_repeated(burst: Burst, consumers: asyncio.Task[None], reader: Persistent) -> None:
    acked = await burst.stop()
    await consumers
    # Events flow to connections again: the reader gets one more message live. Its gateway has its
    # broker connection back (a request through it succeeds), so it closed (1012) what it had to first.
    await reader.ok("get_room", {"room_id": burst.room_id})
    client = await reader.connection()
    last = (await burst.sender.ok("send_message", {"room_id": burst.room_id, "content": "after the faults"}))["item"]
    acked[last["content"]] = last
    assert (await client.expect_event("room.item_added", lambda d: d["item"]["id"] == last["id"]))["item"] == last
    items = await history(reader, burst.room_id)
    assert_gap_free(items)
    assert_stored_once(items, acked)
    print(f"{len(acked)} messages; retries {dict(burst.sender.retried)}")
    # A retry follows a retryable reply, or a connection the gateway closed (1012) once its broker
    # connection came back, so that its client resumes: nothing else.
    assert set(burst.sender.retried) <= RETRYABLE | {"connection"}


async def test_closed_connections_during_a_burst_lose_and_repeat_nothing(start_stack, private_broker):
    stack = await start_stack(scale=SCALE, rate_limit_per_minute=UNLIMITED)
    ann, bob, cat, room = await room_of(stack)
    burst = Burst(ann, room["id"], lanes=8, pace=0.01).start()
    comings = Comings(ann, cat, room["id"])

    async def close_all() -> None:
        await private_broker.ctl("close_all_connections", "boochat fault test")

    for _ in range(3):  # three faults, each hitting a command in flight
        await strike(close_all, burst, within=ann.reply_within * 2)
    await nothing_lost_or_repeated(burst, consumers_back(private_broker, stack), bob)
    await membership_and_presence_hold(comings, [ann, bob], offline=set())
    await ann.close()
    await bob.close()


async def test_broker_stopped_and_started_during_a_burst_loses_and_repeats_nothing(start_stack, private_broker):
    stack = await start_stack(scale=SCALE, rate_limit_per_minute=UNLIMITED)
    ann, bob, cat, room = await room_of(stack)
    burst = Burst(ann, room["id"]).start()
    comings = Comings(ann, cat, room["id"])
    await burst.reached(10)
    await private_broker.ctl("stop_app")
    await ann.wait_retried(ann.retried.total() + 2)  # the outage reached the client
    await private_broker.ctl("start_app")
    consumers = consumers_back(private_broker, stack)
    await burst.reached(len(burst.acked) + 10)  # flowing again
    await nothing_lost_or_repeated(burst, consumers, bob)
    await membership_and_presence_hold(comings, [ann, bob], offline=set())
    await ann.close()
    await bob.close()
