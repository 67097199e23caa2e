"""``boochat replay WORKER``: rebuild a worker's projections from the event log.

The stream ``<ns>.events.log`` keeps every event. Replay drops the worker's projection collections
(when it starts from the first offset), writes a marker event into the log, then applies the
projections to every event from the chosen offset up to its marker: what was in the log when the
replay began. Live projections keep running meanwhile; projections are idempotent and tolerate any
order, so the two converge on the state a replay from scratch would give.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from beanie import init_beanie
from pymongo import AsyncMongoClient

from boochat import topology
from boochat.settings import Settings
from contracts.common import format_time
from contracts.envelope import AnyEvent
from workers.runtime.service import Worker, project
from workers.runtime.store import RUNTIME_DOCUMENTS

MARKER = "replay.requested"
PREFETCH = 500
REPORT_EVERY = 1.0  # seconds


@dataclass
class Progress:
    events: int = 0  # read from the log
    applied: int = 0  # given to a projection
    offset: int | None = None
    started: float = 0.0

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"{self.events} events read, {self.applied} applied, {self.events / elapsed:.0f} events/s, "
            f"offset {self.offset}"
        )


async def replay(
    worker: Worker, settings: Settings, start: str | datetime = "first", report: Callable[[str], None] = print
) -> Progress:
    """Rebuild ``worker``'s projections from ``start`` ("first" or a time) to now; returns the tally."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.require_mongo_url(), tz_aware=True)
    await init_beanie(
        database=client[settings.names.database(worker.name)], document_models=[*RUNTIME_DOCUMENTS, *worker.documents]
    )
    if start == "first":
        for projection in worker.projections.values():
            for document in projection.documents:
                await document.get_pymongo_collection().delete_many({})
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        marker = await _mark(connection, settings, worker.name)
        progress = await _consume(connection, settings, worker, start, marker, report)
    finally:
        await connection.close()
        await client.close()
    report(f"caught up: {progress.line()}")
    return progress


async def _mark(connection: aio_pika.abc.AbstractConnection, settings: Settings, worker: str) -> str:
    """Write a marker into the log: everything before it is what this replay must cover."""
    channel = await connection.channel()  # publisher confirms: the marker is in the log once this returns
    await topology.declare_exchanges(channel, settings)
    marker = uuid.uuid4().hex
    body = {
        "event_id": marker,
        "type": MARKER,
        "aggregate_id": worker,
        "version": 0,
        "occurred_at": format_time(datetime.now(UTC)),
        "payload": {"worker": worker},
    }
    exchange = await channel.get_exchange(settings.names.events)
    await exchange.publish(
        aio_pika.Message(
            json.dumps(body).encode(), content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        ),
        routing_key=MARKER,
    )
    await channel.close()
    return marker


async def _consume(
    connection: aio_pika.abc.AbstractConnection,
    settings: Settings,
    worker: Worker,
    start: str | datetime,
    marker: str,
    report: Callable[[str], None],
) -> Progress:
    channel = await connection.channel()  # a stream consumer needs a prefetch and its own channel
    await channel.set_qos(prefetch_count=PREFETCH)
    log = await channel.declare_queue(settings.names.log, passive=True)
    progress = Progress(started=time.monotonic())
    last_report = progress.started
    async with log.iterator(arguments={"x-stream-offset": start}) as messages:
        async for message in messages:
            body = json.loads(message.body)
            progress.offset = message.headers.get("x-stream-offset")  # type: ignore[assignment]
            await message.ack()
            if body.get("type") == MARKER and body.get("event_id") == marker:
                break
            progress.events += 1
            progress.applied += await _apply(worker, body)
            if time.monotonic() - last_report >= REPORT_EVERY:
                last_report = time.monotonic()
                report(progress.line())
    await channel.close()
    return progress


async def _apply(worker: Worker, body: dict[str, Any]) -> int:
    wanted = [p for p in worker.projections.values() if body.get("type") in p.types]
    if not wanted:
        return 0
    event = AnyEvent.model_validate(body)
    for projection in wanted:
        await project(projection, event)
    return 1
