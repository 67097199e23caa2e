"""Broker topology helpers against the real RabbitMQ."""

import asyncio
import uuid

import aio_pika

from boochat.topology import queue_exists


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
