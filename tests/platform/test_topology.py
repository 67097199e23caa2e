"""Broker topology helpers and ``boochat drop``, against the real RabbitMQ and the Mongo stand-in."""

import asyncio
import os
import sys
import uuid

import aio_pika
from pymongo import AsyncMongoClient
from support.broker import listed
from support.client import Client

from boochat.topology import declare_work_queue, exchange_names, queue_exists, queue_names
from contracts.routing import ITEMS_FOR_OFFLINE, Names


async def test_queue_exists_sees_other_connections_exclusive_queues(amqp_url):
    """A gateway's exclusive queue exists for others while its connection lives, and not after."""
    name = f"probe-{uuid.uuid4().hex}"
    owner = await aio_pika.connect_robust(amqp_url)
    observer = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await owner.channel()
        await channel.declare_queue(name, exclusive=True, auto_delete=True)
        assert await queue_exists(observer, name)
        assert await queue_exists(observer, name), "the refusal closed only a channel of its own"
        await owner.close()
        async with asyncio.timeout(10):  # the broker drops an exclusive queue as the connection goes
            while await queue_exists(observer, name):  # noqa: ASYNC110 - the broker sends no signal
                await asyncio.sleep(0.05)  # polling interval of a bounded wait on a condition
        assert not await queue_exists(observer, f"probe-missing-{uuid.uuid4().hex}")
    finally:
        await observer.close()
        if not owner.is_closed:
            await owner.close()


async def test_a_retired_binding_is_removed_when_the_queue_is_declared(amqp_url):
    """An upgrade: the queue an earlier release bound to room.item_added takes only the offline key
    once declared again, and an item published under its type alone no longer reaches it."""
    names = Names(f"t{uuid.uuid4().hex[:8]}")
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        events = await channel.declare_exchange(names.events, aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queue = f"{names.namespace}.pushes"
        await declare_work_queue(channel, names, queue, names.events, ["room.item_added"])  # the old release
        await declare_work_queue(channel, names, queue, names.events, [ITEMS_FOR_OFFLINE], ["room.item_added"])
        await events.publish(aio_pika.Message(b"everyone online"), routing_key="room.item_added")
        await events.publish(
            aio_pika.Message(b"someone offline", headers={"CC": [ITEMS_FOR_OFFLINE]}), routing_key="room.item_added"
        )
        declared = await channel.declare_queue(queue, passive=True)
        got = await declared.get(timeout=5)
        assert got.body == b"someone offline"
        await got.ack()
        assert await declared.get(fail=False) is None
        await declared.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def test_drop_deletes_everything_a_stack_made(start_stack, mongo_url, amqp_url):
    """``boochat drop`` leaves nothing of a stopped stack's namespace: every queue it declared is one
    the code names, and queues, exchanges and databases are all gone afterwards."""
    stack = await start_stack()
    namespace = stack.settings.namespace
    async with await Client.connect(stack.ws_url, dev_user={"id": f"d-{uuid.uuid4().hex[:8]}", "name": "D"}) as client:
        await client.ok("create_room", {"name": "Doomed", "participant_ids": []})
    await stack.stop()
    assert await listed("queues", f"{namespace}.") == sorted(queue_names(stack.settings.names).names)
    assert await listed("exchanges", f"{namespace}.") == sorted(exchange_names(stack.settings.names))
    mongo = AsyncMongoClient(mongo_url)
    assert any(name.startswith(f"{namespace}_") for name in await mongo.list_database_names())

    env = {**os.environ, "BOOCHAT_AMQP_URL": amqp_url, "BOOCHAT_MONGO_URL": mongo_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "boochat.cli", "drop", namespace,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, errors = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, errors.decode()
    queues = len(queue_names(stack.settings.names).names)
    exchanges = len(exchange_names(stack.settings.names))
    assert output.decode().startswith(f"dropped {namespace}: {queues} queues, {exchanges} exchanges"), output

    assert await listed("queues", f"{namespace}.") == []
    assert await listed("exchanges", f"{namespace}.") == []
    assert not [name for name in await mongo.list_database_names() if name.startswith(f"{namespace}_")]
    await mongo.close()


async def test_drop_refuses_the_default_namespace(amqp_url):
    """Dropping ``boochat`` needs ``--yes-really``; without it the command stops, saying so."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "boochat.cli", "drop", "boochat",
        env={**os.environ, "BOOCHAT_AMQP_URL": amqp_url}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "add --yes-really" in errors.decode()
