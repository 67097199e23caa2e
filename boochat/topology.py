"""Declares exchanges and queues; every process calls it at start-up (declarations are idempotent).

Worker queues are quorum queues with a dead-letter exchange and a delivery limit, so a message
that keeps failing ends up in ``<ns>.dead`` instead of looping or vanishing.
"""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractQueue

from boochat.settings import Settings
from contracts.routing import Names

DELIVERY_LIMIT = 5


async def declare_exchanges(channel: AbstractChannel, settings: Settings) -> None:
    """The namespace's exchanges, its dead-letter queue and its event log.

    The log keeps every event unless ``BOOCHAT_LOG_MAX_AGE`` is set (replay needs what it drops).
    Queue arguments are fixed when a queue is first declared: to change the retention of an existing
    log, set a policy (deploy/rabbitmq/definitions.json) rather than this setting.
    """
    names = settings.names
    await channel.declare_exchange(names.commands, aio_pika.ExchangeType.DIRECT, durable=True)
    events = await channel.declare_exchange(names.events, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(names.deliveries, aio_pika.ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_exchange(names.dead_letters, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(names.dead_letters, durable=True)
    await dead_queue.bind(dead)
    retention = {"x-max-age": settings.log_max_age} if settings.log_max_age else {}
    log = await channel.declare_queue(names.log, durable=True, arguments={"x-queue-type": "stream", **retention})
    await log.bind(events, routing_key="#")


async def declare_work_queue(
    channel: AbstractChannel, names: Names, name: str, exchange: str, keys: Iterable[str]
) -> AbstractQueue:
    """A worker's durable, replicated queue, bound to ``keys`` on ``exchange``."""
    queue = await channel.declare_queue(
        name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": names.dead_letters,
            "x-delivery-limit": DELIVERY_LIMIT,
        },
    )
    for key in keys:
        await queue.bind(exchange, routing_key=key)
    return queue


async def queue_exists(connection: aio_pika.abc.AbstractConnection, name: str) -> bool:
    """Whether queue ``name`` exists (a passive declare; its refusal closes only a channel of its own)."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
        return True
    except aiormq.exceptions.ChannelLockedResource:
        return True  # another connection's exclusive queue: it exists, and is not ours to touch
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
