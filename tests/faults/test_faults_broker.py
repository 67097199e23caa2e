"""Broker faults on a private node: connections closed by the broker, and the broker app stopped and
started, while messages flow. Every command gets ``ok`` or a retryable error; retried with the same
ids, every acknowledged message is stored exactly once with gap-free ``seq``; every worker consumes
again within 15 s."""

from __future__ import annotations

import asyncio

import pytest
from e2e.helpers import new_user

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

CONSUMING_AGAIN = 15.0  # seconds after the last fault


async def room_of(stack):
    reply_within = stack.settings.request_timeout_seconds + 5
    print("stack logs:", stack.log_dir)  # shown when the test fails
    ann = await Persistent.connect(stack.ws_url, new_user("Ann"), reply_within)
    bob = await Persistent.connect(stack.ws_url, new_user("Bob"), reply_within)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob.id]}))["room"]
    return ann, bob, room


def consumers_back(private_broker, stack) -> asyncio.Task[None]:
    """Started right after the last fault: every worker queue has a consumer within 15 s."""
    return asyncio.create_task(consuming_again(private_broker, stack.settings, CONSUMING_AGAIN))


async def nothing_lost_or_repeated(burst: Burst, consumers: asyncio.Task[None], reader: Persistent) -> None:
    acked = await burst.stop()
    await consumers
    # Events flow to connections again: the reader gets one more message live.
    last = (await burst.sender.ok("send_message", {"room_id": burst.room_id, "content": "after the faults"}))["item"]
    acked[last["content"]] = last
    client = await reader.connection()
    assert (await client.expect_event("room.item_added", lambda d: d["item"]["id"] == last["id"]))["item"] == last
    items = await history(reader, burst.room_id)
    assert_gap_free(items)
    assert_stored_once(items, acked)
    print(f"{len(acked)} messages; retries {dict(burst.sender.retried)}")
    assert set(burst.sender.retried) <= RETRYABLE  # every retry followed a reply: no connection was dropped


async def test_closed_connections_during_a_burst_lose_and_repeat_nothing(start_stack, private_broker):
    stack = await start_stack(rate_limit_per_minute=UNLIMITED)
    ann, bob, room = await room_of(stack)
    burst = Burst(ann, room["id"]).start()
    for _ in range(3):  # three times, each once messages flow again after the one before
        await burst.reached(len(burst.acked) + 10)
        await private_broker.ctl("close_all_connections", "boochat fault test")
    await nothing_lost_or_repeated(burst, consumers_back(private_broker, stack), bob)
    await ann.close()
    await bob.close()


async def test_broker_stopped_and_started_during_a_burst_loses_and_repeats_nothing(start_stack, private_broker):
    stack = await start_stack(rate_limit_per_minute=UNLIMITED)
    ann, bob, room = await room_of(stack)
    burst = Burst(ann, room["id"]).start()
    await burst.reached(10)
    await private_broker.ctl("stop_app")
    await ann.wait_retried(ann.retried.total() + 2)  # the outage reached the client
    await private_broker.ctl("start_app")
    consumers = consumers_back(private_broker, stack)
    await burst.reached(len(burst.acked) + 10)  # flowing again
    await nothing_lost_or_repeated(burst, consumers, bob)
    await ann.close()
    await bob.close()
