"""``boochat replay WORKER``: rebuild a worker's projections from the event log while the live ones
keep serving.

The stream ``<ns>.events.log`` keeps every event. A replay first writes a marker into it: what comes
before the marker is what the replay covers. From the first event (the default):

1. the projections' documents are rebuilt into fresh collections, ``<name>__rebuild_<offset>``,
   which nobody reads, from the log's first event up to the marker;
2. catching up before the switch: a second marker is written, and the events between the two
   (those that came while the rebuild ran) are applied to the fresh collections too, so they are
   as new as the live ones within the time this short step takes;
3. the switch, collection by collection: each live collection takes its fresh one's content,
   document by document (each replace atomic; a query may see some documents rebuilt and others
   not yet, each of them whole), then loses the documents the rebuild did not make; the fresh
   collections are dropped;
4. a final catch-up applies the events from the second marker on to the live collections (live
   projections applied them to the old content meanwhile). Projections are idempotent and tolerate
   any order, so the result is what a replay from scratch gives.

No transaction: one over a worker's whole read models would hit MongoDB's 60 s transaction limit on a
real install, and ``renameCollection`` with ``dropTarget`` (atomic per collection on MongoDB) is not
in the Mongo stand-in the tests run on (it renames only to a free name).

A log that no longer starts at offset 0 lost its oldest events to its retention
(``BOOCHAT_LOG_MAX_AGE``, or a ``max-age`` policy): a rebuild from what is left would delete the
live documents those events built. The full rebuild refuses it and changes nothing; ``--from TIME``
re-applies what the log still has.

From a time (``--from``), the projections are applied again to the live collections from then up to
the marker, and nothing is dropped.

A replay rebinds the worker's document classes to other collections: run it in a process of its own,
as ``boochat replay`` does, and one replay of a worker at a time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from beanie import Document, init_beanie
from pymongo import AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from boochat import topology
from boochat.progress import Console
from boochat.settings import Settings
from contracts.common import format_time
from contracts.envelope import AnyEvent
from workers.runtime.store import RUNTIME_DOCUMENTS
from workers.runtime.tables import Worker

MARKER = "replay.requested"
PREFETCH = 500
IDLE_TIMEOUT = 30.0  # seconds without a delivery before the log is taken to have stopped delivering
MONGO_TIMEOUT_MS = 10_000  # how long to look for MongoDB before giving up


@dataclass
class Plan:
    """What a replay covers: ``events`` log entries from ``first`` to the marker at ``marker``, of
    which ``applicable`` are of types the worker's projections take."""

    worker: str
    collections: list[str]
    start: str | datetime
    events: int = 0
    applicable: int = 0
    first: int | None = None
    marker: int | None = None
    applied: int = 0  # events given to the projections
    oldest: int | None = None  # the offset of the log's first entry read: 0 unless retention cut it


class ReplayError(Exception):
    """A replay that cannot go on; the message says why in one line."""


async def replay(
    worker: Worker,
    settings: Settings,
    start: str | datetime = "first",
    *,
    dry_run: bool = False,
    console: Console | None = None,
) -> Plan:
    """Rebuild ``worker``'s projections from ``start`` ("first" or a time) up to now; with
    ``dry_run``, only count what it would read. Returns the plan, with what was applied."""
    console = console or Console()
    documents = _documents(worker)
    plan = Plan(worker.name, [d.Settings.name for d in documents], start)
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.require_mongo_url(), tz_aware=True, serverSelectionTimeoutMS=MONGO_TIMEOUT_MS
    )
    database = client[settings.names.database(worker.name)]
    try:
        await client.admin.command("ping")  # no MongoDB: say so before touching the broker
        connection = await aio_pika.connect(settings.amqp_url)  # not robust: a lost broker ends the replay
        async with connection:
            marker = await _mark(connection, settings, worker.name)
            await _count(connection, settings, worker, plan, marker, console)
            if dry_run or not documents:
                return plan
            if start == "first":
                complete(plan)
                await _rebuild(connection, settings, worker, database, plan, marker, console)
            else:
                await init_beanie(database=database, document_models=[*RUNTIME_DOCUMENTS, *worker.documents])
                await _apply(connection, settings, worker, start, marker, plan, console, "applying")
    finally:
        await client.close()
    return plan


def complete(plan: Plan) -> None:
    """Refuse a full rebuild from a log whose oldest events are gone (see the module's doc)."""
    if plan.oldest:
        raise ReplayError(
            f"the event log starts at offset {plan.oldest}, not 0: its retention (BOOCHAT_LOG_MAX_AGE or a "
            f"max-age policy) dropped the oldest events, and a rebuild from the rest would delete the read "
            f"models they built; nothing was changed (--from TIME re-applies what the log still has)"
        )


def _documents(worker: Worker) -> list[type[Document]]:
    """The projections' document classes, each named in its own ``Settings`` (all Boochat's are)."""
    documents = list(dict.fromkeys(d for p in worker.projections.values() for d in p.documents))
    for document in documents:
        if not getattr(document.__dict__.get("Settings"), "name", None):
            raise ReplayError(
                f"{document.__name__} names no collection in its own Settings: it cannot be rebuilt aside"
            )
    return documents


async def _rebuild(
    connection: AbstractConnection,
    settings: Settings,
    worker: Worker,
    database: AsyncDatabase[Any],
    plan: Plan,
    marker: str,
    console: Console,
) -> None:
    documents = _documents(worker)
    fresh = {d: f"{d.Settings.name}__rebuild_{plan.marker}" for d in documents}
    live = {d: d.Settings.name for d in documents}
    names = await database.list_collection_names()
    leftovers = [n for n in names if "__rebuild_" in n and n.partition("__rebuild_")[0] in live.values()]
    for name in leftovers:  # an interrupted replay (killed) could not drop them
        await database.drop_collection(name)
    if leftovers:
        console.say(f"dropped {', '.join(leftovers)}, left by an interrupted replay")
    console.say(f"rebuilding into {', '.join(fresh.values())}; the live {', '.join(live.values())} keep serving")
    try:
        with _named(fresh):  # Beanie binds each class to the collection its Settings name, with its indexes
            await init_beanie(database=database, document_models=[*RUNTIME_DOCUMENTS, *worker.documents])
            await _apply(connection, settings, worker, "first", marker, plan, console, "rebuilding")
            assert plan.marker is not None  # the rebuild read the log up to its marker, at this offset
            tail = await _mark(connection, settings, worker.name)
            switched_at = await _apply(
                connection, settings, worker, plan.marker, tail, plan, console, "applying what came meanwhile"
            )
        for document in documents:
            await _switch(database, live[document], fresh[document])
        console.say(f"switched: the live {', '.join(live.values())} now hold the rebuilt read models")
    finally:
        for name in fresh.values():
            await database.drop_collection(name)
    await init_beanie(database=database, document_models=[*RUNTIME_DOCUMENTS, *worker.documents])
    since = await _mark(connection, settings, worker.name)
    await _apply(connection, settings, worker, switched_at, since, plan, console, "catching up")


@contextmanager
def _named(names: dict[type[Document], str]) -> Iterator[None]:
    before = {document: document.Settings.name for document in names}
    for document, name in names.items():
        document.Settings.name = name
    try:
        yield
    finally:
        for document, name in before.items():
            document.Settings.name = name


SWITCH_BATCH = 500  # documents one write of the switch replaces


async def _switch(database: AsyncDatabase[Any], live: str, fresh: str) -> None:
    """Give the ``live`` collection the ``fresh`` one's content: each document replaced whole (an
    atomic single-document write), then those the rebuild did not make deleted."""
    kept: set[Any] = set()
    batch: list[ReplaceOne[Any]] = []
    async for document in database[fresh].find({}):
        kept.add(document["_id"])
        batch.append(ReplaceOne({"_id": document["_id"]}, document, upsert=True))
        if len(batch) == SWITCH_BATCH:
            await database[live].bulk_write(batch, ordered=False)
            batch = []
    if batch:
        await database[live].bulk_write(batch, ordered=False)
    stale = [d["_id"] async for d in database[live].find({}, {"_id": 1}) if d["_id"] not in kept]
    for start in range(0, len(stale), SWITCH_BATCH):
        await database[live].delete_many({"_id": {"$in": stale[start : start + SWITCH_BATCH]}})


# The log ----------------------------------------------------------------------------------------


async def write_marker(
    connection: AbstractConnection, settings: Settings, aggregate_id: str, payload: dict[str, Any]
) -> str:
    """Write a marker into the log (its message id is its own; publisher confirms: it is in the log
    once this returns): everything before it is covered. Replay skips markers as events."""
    channel = await connection.channel()
    try:
        await topology.declare_exchanges(channel, settings)
        marker = uuid.uuid4().hex
        body = {
            "event_id": marker,
            "type": MARKER,
            "aggregate_id": aggregate_id,
            "version": 0,
            "occurred_at": format_time(datetime.now(UTC)),
            "payload": payload,
        }
        exchange = await channel.get_exchange(settings.names.events)
        await exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=marker,
            ),
            routing_key=MARKER,
        )
    finally:
        await channel.close()
    return marker


async def _mark(connection: AbstractConnection, settings: Settings, worker: str) -> str:
    return await write_marker(connection, settings, worker, {"worker": worker})


async def _count(
    connection: AbstractConnection, settings: Settings, worker: Worker, plan: Plan, marker: str, console: Console
) -> None:
    """Read the log up to the marker without applying anything: how much there is, for the total."""
    types = {t for p in worker.projections.values() for t in p.types}
    started = time.monotonic()
    async for message, offset in _read(connection, settings, plan.start, marker):
        if plan.oldest is None:
            plan.oldest = offset
        if message.message_id == marker:
            plan.marker = offset
        if message.routing_key == MARKER:  # this replay's, or another's: not an event
            continue
        if plan.first is None:
            plan.first = offset
        plan.events += 1
        plan.applicable += message.routing_key in types
    console.say(
        f"{worker.name}: {plan.events} events in the log from {plan.start} up to offset {plan.marker}, "
        f"{plan.applicable} of them for its projections ({', '.join(plan.collections) or 'none'}) "
        f"(counted in {time.monotonic() - started:.1f} s)"
    )


async def _apply(
    connection: AbstractConnection,
    settings: Settings,
    worker: Worker,
    start: str | int | datetime,
    marker: str,
    plan: Plan,
    console: Console,
    what: str,
) -> int:
    """Apply the projections to every event from ``start`` up to ``marker``; returns the marker's offset."""
    total = None if isinstance(start, int) else plan.events  # catching up: not counted beforehand
    reached = -1
    with console.counting(what, total) as advance:
        async for message, offset in _read(connection, settings, start, marker):
            reached = offset
            if message.routing_key != MARKER:
                plan.applied += await _project(worker, message)
                advance(1)
    return reached


async def _project(worker: Worker, message: AbstractIncomingMessage) -> int:
    wanted = [p for p in worker.projections.values() if message.routing_key in p.types]
    if not wanted:
        return 0
    event = AnyEvent.model_validate_json(message.body)
    for projection in wanted:
        await projection.run(event)
    return 1


async def _read(
    connection: AbstractConnection, settings: Settings, start: str | int | datetime, marker: str
) -> AsyncIterator[tuple[AbstractIncomingMessage, int]]:
    """Yield ``(message, offset)`` for every log entry from ``start`` up to the marker, the marker
    last (it ends the iteration: the consumer is gone once the caller's loop ends)."""
    channel = await connection.channel()  # a stream consumer needs a prefetch and its own channel
    try:
        await channel.set_qos(prefetch_count=PREFETCH)
        log = await channel.declare_queue(settings.names.log, passive=True)
        async with log.iterator(arguments={"x-stream-offset": start}, timeout=IDLE_TIMEOUT) as messages:
            async for message in messages:
                await message.ack()
                offset = message.headers["x-stream-offset"]  # set by RabbitMQ on every stream delivery
                assert isinstance(offset, int)
                yield message, offset
                if message.message_id == marker:
                    return
    finally:
        await channel.close()
