"""workers.runtime.replay against the real RabbitMQ and the Mongo stand-in, on the users worker's
directory: what arrives while the rebuild runs is in the rebuilt collections before they are switched
in, and a log its retention cut is not rebuilt from (its live documents are kept)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from boochat import topology
from boochat.progress import Console
from boochat.settings import Settings
from contracts.common import format_time
from workers.runtime import replay
from workers.users.app import WORKER

DIRECTORY = "directory"  # users' Profile collection


@pytest.fixture
async def exchange(settings: Settings) -> AsyncIterator[aio_pika.abc.AbstractExchange]:
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel()
    await topology.declare_exchanges(channel, settings)
    yield await channel.get_exchange(settings.names.events)
    await connection.close()


async def renamed(exchange: aio_pika.abc.AbstractExchange, user_id: str, name: str, version: int) -> None:
    """A user.profile_changed into the log (publisher confirms: it is there once this returns)."""
    event_id = uuid.uuid4().hex
    body = {
        "event_id": event_id,
        "type": "user.profile_changed",
        "aggregate_id": user_id,
        "version": version,
        "occurred_at": format_time(datetime.now(UTC)),
        "payload": {"user": {"id": user_id, "name": name, "image_url": None}},
    }
    message = aio_pika.Message(json.dumps(body).encode(), message_id=event_id, delivery_mode=2)
    await exchange.publish(message, routing_key="user.profile_changed")


async def directory(settings: Settings) -> dict[str, dict[str, Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_url)
    try:
        found = await client[settings.names.database("users")][DIRECTORY].find({}).to_list()
        return {doc["_id"]: doc for doc in found}
    finally:
        await client.close()


async def test_what_arrives_during_the_rebuild_is_in_before_the_switch(settings, exchange, monkeypatch):
    """A rename published while the rebuild runs: the live directory holds it from the switch on,
    never the rebuilt state without it (a window in which a leaver would be a member again); the
    switch goes collection by collection, with no transaction."""
    await renamed(exchange, "ann", "Ann", 1)
    rebuild, switch = replay._apply, replay._switch
    seen: list[str] = []

    async def applying(*args: Any, **kwargs: Any) -> int:
        reached = await rebuild(*args, **kwargs)
        if args[7] == "rebuilding":  # what: the rebuild up to the first marker is done
            await renamed(exchange, "ann", "Annie", 2)
        return reached

    async def switching(*args: Any, **kwargs: Any) -> None:
        await switch(*args, **kwargs)
        seen.append((await directory(settings))["ann"]["name"])

    def no_transaction(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("one transaction over a worker's read models outlives MongoDB's 60 s limit")

    monkeypatch.setattr(replay, "_apply", applying)
    monkeypatch.setattr(replay, "_switch", switching)
    monkeypatch.setattr(AsyncMongoClient, "start_session", no_transaction)
    plan = await replay.replay(WORKER, settings, console=Console(io.StringIO()))
    assert seen and set(seen) == {"Annie"}, seen
    assert (await directory(settings))["ann"]["profile_version"] == 2 and plan.applied == 2


async def test_a_log_cut_by_its_retention_is_not_rebuilt_from(settings, exchange, monkeypatch):
    """The log no longer starts at offset 0 (BOOCHAT_LOG_MAX_AGE dropped its oldest events): the full
    rebuild stops with a line saying why, and the live documents those events built stay."""
    await renamed(exchange, "bob", "Bob", 1)
    await replay.replay(WORKER, settings, console=Console(io.StringIO()))
    before = await directory(settings)
    assert before["bob"]["name"] == "Bob"
    count = replay._count

    async def cut(*args: Any, **kwargs: Any) -> None:  # as RabbitMQ reads a stream whose first segment is gone
        await count(*args, **kwargs)
        plan = args[3]
        plan.oldest = 3

    monkeypatch.setattr(replay, "_count", cut)
    await renamed(exchange, "cy", "Cy", 1)
    with pytest.raises(replay.ReplayError, match="starts at offset 3"):
        await replay.replay(WORKER, settings, console=Console(io.StringIO()))
    assert await directory(settings) == before
