"""Poison messages against the real RabbitMQ: a failing reaction or projection is retried with
growing delays, then parked in <ns>.dead with why, while its queue goes on serving other events; and
``boochat dead`` lists, shows and re-drives parked messages."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest

from boochat import dead, topology
from boochat.settings import Settings
from boochat.supervisor import child_env
from contracts.routing import user_key
from workers.messaging.app import create_app as create_messaging

DELAYS = (0.4, 0.8, 1.6)  # seconds; the default schedule (1 s, 5 s, 30 s) would make a slow test
WAIT = 20.0


@pytest.fixture
async def settings(settings: Settings) -> AsyncIterator[Settings]:
    """Short retry delays; the namespace dropped with them (its retry queues are named by delay)."""
    short = settings.model_copy(update={"retry_delays": DELAYS, "metrics_port": 0})
    yield short
    await topology.drop_namespace(short)


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel(on_return_raises=True)
    await topology.declare_exchanges(channel, settings)
    yield channel
    await connection.close()


def room_created(event_id: str, room_id: str, payload: dict) -> aio_pika.Message:
    event = {
        "event_id": event_id,
        "type": "room.created",
        "aggregate_id": room_id,
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00.000Z",
        "actor_id": "ann",
        "correlation_id": event_id,
        "causation_id": event_id,
        "payload": payload,
    }
    return aio_pika.Message(
        json.dumps(event).encode(), content_type="application/json", message_id=event_id, delivery_mode=2
    )


async def boochat_dead(settings: Settings, *args: str) -> str:
    """``boochat dead ARGS`` for the test's namespace; its stdout (it must succeed)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "boochat.cli", "dead", *args,
        env=child_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, errors = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, errors.decode()
    return output.decode()


async def test_a_poison_event_is_retried_with_growing_delays_then_parked_and_redriven(settings, channel):
    """Both messaging queues that take ``room.created`` try the poison event four times, further apart
    each time, then park it with its queue, error and attempts; a good event published after it is
    served meanwhile; ``boochat dead`` lists it, shows it and sends it back to its queue."""
    names = settings.names
    events = await channel.get_exchange(names.events)
    ann = f"ann-{uuid.uuid4().hex[:8]}"
    deliveries = await channel.declare_queue(exclusive=True)
    await deliveries.bind(names.deliveries, routing_key=user_key(ann))
    parking = await channel.declare_queue(exclusive=True)  # sees a copy of whatever is parked
    await parking.bind(names.dead_letters)
    good_room = {
        "id": f"room-{uuid.uuid4().hex[:8]}",
        "name": "Good",
        "image_url": None,
        "participant_ids": [ann],
        "created_by": ann,
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    async with create_messaging(settings):
        await events.publish(room_created("poison", "bad-room", {"room": "not a room"}), routing_key="room.created")
        good = room_created("good", good_room["id"], {"room": good_room, "names": {ann: "Ann"}})
        await events.publish(good, routing_key="room.created")
        async with asyncio.timeout(WAIT), deliveries.iterator() as arriving:
            async for message in arriving:
                await message.ack()
                if json.loads(message.body)["event"] == "room.created":
                    served_at = datetime.now(UTC)
                    break
        copies = 0
        async with asyncio.timeout(WAIT), parking.iterator() as arriving:
            async for message in arriving:
                await message.ack()
                copies += message.message_id == "poison"
                if copies == 2:  # one from each queue
                    break
        parked = await dead.peek(settings)

    queues = {names.reaction_queue("messaging", "copy_rooms"), names.reaction_queue("messaging", "follow_rooms")}
    assert {p.queue for p in parked} == queues
    for item in parked:
        assert item.message_id == "poison" and item.attempts == len(DELAYS) + 1
        assert "ValidationError" in item.reason
        failed = [datetime.fromisoformat(t) for t in item.headers[dead.FAILED_AT]]
        gaps = [(later - earlier).total_seconds() for earlier, later in zip(failed, failed[1:], strict=False)]
        assert len(gaps) == len(DELAYS)
        assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, DELAYS, strict=True)), gaps
        assert gaps == sorted(gaps), gaps  # growing
        assert served_at < failed[1], "the good event waited for the poison one"

    listing = await boochat_dead(settings, "list")
    assert listing.count("poison") == 2 and listing.count(f"{len(DELAYS) + 1} attempts") == 2
    shown = await boochat_dead(settings, "show", "1")
    assert '"event_id": "poison"' in shown and dead.ERROR in shown and parked[0].queue in shown

    first = parked[0].queue
    assert (await boochat_dead(settings, "redrive", "1")).startswith("redriven 1")
    [left] = await dead.peek(settings)
    assert left.queue != first
    origin = await channel.declare_queue(first, passive=True)
    back = await origin.get(timeout=5)
    assert back is not None and back.message_id == "poison" and dead.ATTEMPTS not in (back.headers or {})
    await back.ack()

    assert (await boochat_dead(settings, "redrive", "--all")).startswith("redriven 1")
    assert await dead.peek(settings) == []


async def test_redrive_keeps_what_names_no_queue(settings, channel):
    """A parked message that names no queue it came from stays parked, and the command says why."""
    dead_letters = await channel.get_exchange(settings.names.dead_letters)
    await dead_letters.publish(aio_pika.Message(b"{}", message_id="orphan"), routing_key="")
    redriven = await dead.redrive(settings)
    assert redriven.moved == [] and [(p.message_id, why) for p, why in redriven.kept] == [
        ("orphan", "no header names the queue it came from")
    ]
    assert [p.message_id for p in await dead.peek(settings)] == ["orphan"]


async def test_boochat_dead_says_when_a_namespace_has_no_dead_letters(settings):
    """A namespace without ``<ns>.dead`` (mistyped, never started) is one line and exit status 1."""
    missing = settings.model_copy(update={"namespace": f"missing{uuid.uuid4().hex[:8]}"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "boochat.cli", "dead", "list",
        env=child_env(missing), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    [line] = errors.decode().splitlines()
    assert f"there is no queue {missing.names.dead_letters}" in json.loads(line)["reason"]
