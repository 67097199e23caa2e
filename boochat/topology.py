"""Declares exchanges and queues; every process calls it at start-up (declarations are idempotent).
``drop_namespace`` deletes them again, with the namespace's databases, when a stack is thrown away.

Worker queues are quorum queues with a dead-letter exchange and a delivery limit, so a message
that keeps failing ends up in ``<ns>.dead`` instead of looping or vanishing. A reaction or projection
that fails waits in a retry queue ``<ns>.retry.<delay>`` (one per ``BOOCHAT_RETRY_DELAYS``, each fed
by a fanout exchange of the same name) whose messages expire into the default exchange, which routes
them back by their routing key, the name of the queue they came from (workers/runtime/retry.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue
from pymongo import AsyncMongoClient

from boochat.settings import Settings
from boochat.supervisor import WORKERS, available_workers
from contracts.routing import Names

DELIVERY_LIMIT = 5
RETRY_DELAYS: tuple[float, ...] = Settings.model_fields["retry_delays"].default


def retry_queue(names: Names, delay: float) -> str:
    """The queue (and fanout exchange) where a failed message waits ``delay`` seconds: ``<ns>.retry.5s``."""
    ms = round(delay * 1000)
    return f"{names.namespace}.retry.{ms // 1000}s" if ms % 1000 == 0 else f"{names.namespace}.retry.{ms}ms"


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
    for delay in settings.retry_delays:
        name = retry_queue(names, delay)
        retry = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
        # Classic, not quorum: one process fewer each, and every message in it has the same TTL, so
        # the head always expires first. Expired messages go back by their routing key: their queue.
        waiting = await channel.declare_queue(
            name, durable=True, arguments={"x-message-ttl": round(delay * 1000), "x-dead-letter-exchange": ""}
        )
        await waiting.bind(retry)


# Bindings an earlier release made that this one no longer wants, by (worker, reaction): the worker
# removes them at start (unbinding what is not bound does nothing), so an upgrade needs no manual
# step. Notifications took every room.item_added until it took only ITEMS_FOR_OFFLINE (4b8c1e1).
RETIRED_BINDINGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("notifications", "push_to_offline_members"): ("room.item_added",),
}


async def declare_work_queue(
    channel: AbstractChannel,
    names: Names,
    name: str,
    exchange: str,
    keys: Iterable[str],
    retired: Iterable[str] = (),
) -> AbstractQueue:
    """A worker's durable, replicated queue, bound to ``keys`` on ``exchange``, and not to ``retired``."""
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
    for key in retired:
        await queue.unbind(exchange, routing_key=key)
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


# Dropping a namespace ---------------------------------------------------------------------------


def exchange_names(names: Names, retry_delays: Iterable[float] = RETRY_DELAYS) -> tuple[str, ...]:
    """The exchanges ``declare_exchanges`` makes (with the settings' ``retry_delays``)."""
    retries = tuple(retry_queue(names, delay) for delay in retry_delays)
    return (names.commands, names.events, names.deliveries, names.dead_letters, *retries)


@dataclass(frozen=True)
class Queues:
    """A namespace's durable queues, and the workers whose tables could not be read (their event
    queues are missing from ``names``)."""

    names: list[str]
    unread: dict[str, str]


def queue_names(names: Names, retry_delays: Iterable[float] = RETRY_DELAYS) -> Queues:
    """Every durable queue of the namespace, derived from code: the dead letters, the event log, the
    retry queues (of the settings' ``retry_delays``), and each written worker's command queue and one
    queue per reaction or projection in its tables.

    Not here: gateways' queues and RPC reply queues. They are exclusive and auto-delete (RabbitMQ
    removes them with their connection, and refuses anyone else who tries). Nor workers' mirror
    queues (``Names.mirror_queue``, one per process): auto-delete, RabbitMQ removes each when its
    process stops consuming it, and one left unused expires (``workers.runtime.subscribers``).
    """
    queues = [names.dead_letters, names.log, *(retry_queue(names, delay) for delay in retry_delays)]
    unread: dict[str, str] = {}
    for name in available_workers():
        queues.append(names.command_queue(name))
        try:
            # Imported here, not at the top: the workers import this module.
            worker = importlib.import_module(f"workers.{name}.app").WORKER
        except Exception as error:  # a worker that does not import must not keep the rest alive
            unread[name] = repr(error)
            continue
        queues.extend(names.reaction_queue(name, interest) for interest in worker.interests())
    return Queues(queues, unread)


@dataclass(frozen=True)
class Dropped:
    """What ``drop_namespace`` found and deleted; ``unread``: workers whose event queues it could
    not name (their tables did not import), so may be left."""

    queues: list[str]
    exchanges: list[str]
    databases: list[str]
    unread: dict[str, str]


async def drop_namespace(settings: Settings) -> Dropped:
    """Delete ``settings.namespace``'s queues and exchanges on the broker and, when ``settings.mongo_url``
    is set, its workers' databases. Deleting what is already gone is not an error.

    Stop the namespace's processes first: a worker still running loses its queues under it.
    """
    names = settings.names
    known = queue_names(names, settings.retry_delays)
    queues: list[str] = []
    exchanges: list[str] = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in known.names:
            if not await queue_exists(connection, queue):  # asked first, to report what was there
                continue
            try:
                await channel.queue_delete(queue)
                queues.append(queue)
            except aiormq.exceptions.ChannelLockedResource:  # another connection's exclusive queue
                channel = await connection.channel()  # goes with its connection; the refusal closed ours
        for exchange in exchange_names(names, settings.retry_delays):
            if await _exchange_exists(connection, exchange):
                await channel.exchange_delete(exchange)
                exchanges.append(exchange)
    databases: list[str] = []
    if settings.mongo_url:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, serverSelectionTimeoutMS=10_000)
        try:
            present = set(await client.list_database_names())
            for database in (names.database(worker) for worker in WORKERS):
                if database in present:
                    await client.drop_database(database)
                    databases.append(database)
        finally:
            await client.close()
    return Dropped(queues, exchanges, databases, known.unread)


async def _exchange_exists(connection: AbstractConnection, name: str) -> bool:
    """Like ``queue_exists``, for an exchange."""
    channel = await connection.channel()
    try:
        await channel.declare_exchange(name, passive=True)
        return True
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
