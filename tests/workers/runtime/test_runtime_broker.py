"""The worker runtime against the real RabbitMQ and the Mongo stand-in: request/reply, the event
log, deliveries and the relay after a crash (poison messages: test_runtime_retry.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest

from boochat import topology
from boochat.rpc import RpcClient
from contracts.envelope import Command
from contracts.routing import user_key
from workers.runtime.store import StoredEvent
from workers.users.app import create_app as create_users
from workers.users.storage import UserDoc

WAIT = 10.0


@pytest.fixture
async def connection(settings) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    yield connection
    await connection.close()


@pytest.fixture
async def channel(connection, settings) -> aio_pika.abc.AbstractChannel:
    channel = await connection.channel(on_return_raises=True)
    await topology.declare_exchanges(channel, settings)
    return channel


@pytest.fixture
async def rpc(channel, settings) -> RpcClient:
    client = RpcClient(channel, settings.names, timeout=WAIT)
    await client.start()
    return client


async def read_log(connection, settings, count: int) -> list[dict]:
    """The first ``count`` events of the namespace's stream, from its first offset."""
    stream_channel = await connection.channel()
    await stream_channel.set_qos(prefetch_count=100)
    queue = await stream_channel.declare_queue(settings.names.log, passive=True)
    found: list[dict] = []
    async with asyncio.timeout(WAIT), queue.iterator(arguments={"x-stream-offset": "first"}) as messages:
        async for message in messages:
            found.append(json.loads(message.body))
            await message.ack()
            if len(found) == count:
                break
    await stream_channel.close()
    return found


async def test_commands_reply_and_events_reach_the_log_and_gateways(settings, connection, channel, rpc):
    """A request gets its reply; the event is in the stream; the delivery reaches a bound queue."""
    pats = await channel.declare_queue(exclusive=True)
    await pats.bind(settings.names.deliveries, routing_key=user_key("pat"))  # Pat shares no room: to Pat alone
    async with create_users(settings):
        signed = await rpc.call(
            "users", Command(type="sign_in", id="s1", user_id="pat", data={"user": {"id": "pat", "name": "Pat"}})
        )
        assert signed.error is None
        opened = await rpc.call(
            "users",
            Command(type="connection_opened", id="o1", user_id="pat", data={"connection_id": "c", "gateway_id": "g"}),
        )
        assert opened.error is None
        types = [event["type"] for event in await read_log(connection, settings, 3)]
        assert types == ["user.profile_changed", "user.connection_opened", "user.presence_changed"]
        async with asyncio.timeout(WAIT), pats.iterator() as deliveries:
            async for message in deliveries:  # user.updated comes first: Pat is a new user
                if (delivery := json.loads(message.body))["event"] == "presence.changed":
                    break
        assert delivery["data"] == {"user_id": "pat", "online": True}


async def test_relay_publishes_what_a_crash_left_in_an_outbox(settings, connection):
    """An event written to an aggregate's outbox but never published goes out when the worker starts."""
    async with create_users(settings):
        pass  # the first start declares the topology and storage
    written = datetime.now(UTC)
    entry = {
        "event_id": "left-behind",
        "type": "user.profile_changed",
        "aggregate_id": "kim",
        "version": 1,
        "occurred_at": written,
        "actor_id": "kim",
        "correlation_id": "r1",
        "causation_id": "r1",
        "payload": {"user": {"id": "kim", "name": "Kim", "image_url": None}},
        "command_key": None,
        "reply": None,
        "deliveries": [],
    }
    doc = UserDoc(
        id="kim", name="Kim", image_url=None, revision=1, version=1, outbox=[entry], outbox_since=written.timestamp()
    )
    await UserDoc.get_pymongo_collection().insert_one(doc.model_dump(by_alias=True, exclude={"revision_id"}))
    async with create_users(settings):
        [event] = await read_log(connection, settings, 1)
        assert event["event_id"] == "left-behind" and event["correlation_id"] == "r1"
    assert (await UserDoc.get("kim")).outbox == []
    assert await StoredEvent.get("left-behind") is not None


def test_every_worker_starts_consuming_commands_last(settings):
    """FastStream starts subscribers in this order: a worker that consumes its command queue (what
    ``wait_stack_ready`` waits for) already runs its reactions, projections and mirrors."""
    from faststream.rabbit import RabbitBroker

    from boochat.supervisor import available_workers
    from workers.runtime.service import create

    for name in available_workers():
        worker = __import__(f"workers.{name}.app", fromlist=["WORKER"]).WORKER
        broker = create(worker, settings).broker
        assert isinstance(broker, RabbitBroker)
        queues = [subscriber.queue.name for subscriber in broker.subscribers]
        assert queues[-1] == settings.names.command_queue(name), (name, queues)
        assert queues.count(queues[-1]) == 1
