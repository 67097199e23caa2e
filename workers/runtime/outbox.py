"""From facts to published events: stamping, the one queue every publish goes through (in order,
in batches, confirmations awaited together), aggregates' outboxes and their relay."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aio_pika
import structlog
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Delivery, Fact, Reply, Rider, Send, occurred
from contracts.routing import Names
from workers.runtime.entries import Message, OutboxEntry, Routed, delivery_message
from workers.runtime.store import Aggregate, StoredEvent, clear_outbox

log = structlog.get_logger()

RELAY_EVERY = 2.0  # seconds between relay passes
RELAY_AFTER = timedelta(seconds=5)  # an outbox entry this old was left behind by a crash
BATCH = 100  # publishes sent together at most
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0)  # waits before publishing a failed batch again
# Seconds a batch's confirmations may take before the batch counts as failed (and is tried again):
# a confirmation that never comes must not hold every later publish, and their writers, forever.
CONFIRM_TIMEOUT = 15.0


class PublishCancelledError(ConnectionError):
    """A publish cancelled under us (its channel closed before the broker confirmed it)."""


@dataclass(frozen=True)
class Cause:
    """Who and what caused the events being written: carried into every event's envelope."""

    actor_id: str | None
    correlation_id: str | None
    causation_id: str | None
    command_key: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who waits for a command's reply: their queue and correlation id, and the deliveries key they
    offered (header ``REPLY_KEY``; None: none), under which the reply may ride on a delivery the
    command causes instead of travelling on its own (``carry``)."""

    reply_to: str
    correlation_id: str
    key: str | None = None


def carry(entry: OutboxEntry, caller: Caller | None, reply: Reply) -> OutboxEntry | None:
    """``entry`` to publish with ``reply`` riding on its first delivery to ``caller``; None when the
    caller offered no key or there is no delivery (the reply then goes on its own)."""
    if caller is None or caller.key is None or not entry.deliveries:
        return None
    return entry.carrying(caller.key, caller.correlation_id, reply)


@dataclass(frozen=True)
class Carried:
    """What a handler returns when its reply already rides on a delivery (``carry``): the result
    the reply carries, and nothing more to send."""

    result: BaseModel


def stamp(fact: Fact, version: int, cause: Cause, now: datetime, reply: BaseModel | None = None) -> OutboxEntry:
    """The stored form of a fact: an event envelope plus what it sends to clients (and ``reply``,
    the result of the command that committed it, with its first event)."""
    event_id = uuid.uuid4().hex
    return OutboxEntry(
        event_id=event_id,
        type=fact.type,
        aggregate_id=fact.aggregate_id,
        version=version,
        occurred_at=occurred(now),
        actor_id=cause.actor_id,
        correlation_id=cause.correlation_id,
        causation_id=cause.causation_id,
        payload=fact.payload.model_dump(mode="json"),
        command_key=cause.command_key,
        reply=reply.model_dump(mode="json") if reply is not None else None,
        deliveries=[routed(event_id, send) for send in fact.sends],
        also=list(fact.also),
    )


def routed(event_id: str, send: Send) -> Routed:
    """A delivery's id derives from its event, so a gateway drops a second copy of it."""
    riders = [
        Rider(id=f"{event_id}/{r.event}", key=r.key, event=r.event, data=r.data.model_dump(mode="json"))
        for r in send.riders
    ]
    data = send.data.model_dump(mode="json")
    body = Delivery(id=f"{event_id}/{send.event}", event=send.event, data=data, riders=riders)
    return Routed(key=send.key, body=body.model_dump(mode="json", exclude_defaults=True))


@dataclass
class _Queued:
    messages: list[Message]
    done: asyncio.Future[None]


class Outbox:
    """Every event and delivery a worker process publishes goes through ``publish``: one queue,
    published in the order queued, a batch at a time with its confirmations awaited together, so a
    busy room's events keep up and a room's order holds.

    Aggregates' events are written into the aggregate's ``outbox`` first (``store.write``), then
    ``flush`` stores them in the event store, publishes them and clears them; the relay does the
    same for what a crash left behind.
    """

    def __init__(
        self,
        broker: RabbitBroker,
        names: Names,
        aggregates: list[type[Aggregate]],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._broker = broker
        self._names = names
        # Labelled by exchange and destination: an event's type, a delivery's kind of key (room, user,
        # everyone), never a room or a user (one time series each).
        self._published = Counter(
            "boochat_published_messages",
            "Messages the outbox published and the broker confirmed",
            ["exchange", "destination"],
            registry=registry,
        )
        self._aggregates = aggregates
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def attach(self, channel: aio_pika.abc.AbstractChannel) -> None:
        """The confirming channel every publish goes on."""
        self._exchanges = {
            "events": await channel.get_exchange(self._names.events, ensure=False),
            "deliveries": await channel.get_exchange(self._names.deliveries, ensure=False),
        }

    def publish(self, messages: list[Message]) -> asyncio.Future[None]:
        """Queue ``messages`` to go out after everything queued before them. The future is settled
        once the broker confirmed them, or with the error that stopped them (after retries); whoever
        stored them publishes them again later (at least once: consumers drop what they had)."""
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Queued(messages, done))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_queued())
        return done

    async def drain(self) -> None:
        """Wait until everything queued is published (or given up)."""
        await self._queue.join()

    async def _publish_queued(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
            error: BaseException | None = None
            try:
                await self._transmit_retrying([message for queued in batch for message in queued.messages])
            except Exception as failed:  # settled on each future: their owners decide
                log.warning("publish failed", error=repr(failed), messages=len(batch))
                error = failed
            except asyncio.CancelledError as stopping:  # this task is stopped: settle, then stop
                error = stopping
            for queued in batch:
                if not queued.done.done():
                    if error is None:
                        queued.done.set_result(None)
                    else:
                        stopped = isinstance(error, asyncio.CancelledError)
                        queued.done.set_exception(PublishCancelledError() if stopped else error)
                self._queue.task_done()
            if isinstance(error, asyncio.CancelledError):
                raise error

    async def _transmit_retrying(self, messages: list[Message]) -> None:
        for delay in RETRY_SECONDS:
            try:
                return await self._transmit(messages)
            except Exception as error:  # the robust connection reconnects meanwhile
                log.warning("publish failed; retrying", error=repr(error), retry_in=delay)
                await asyncio.sleep(delay)
        await self._transmit(messages)

    async def _transmit(self, messages: list[Message]) -> None:
        """Write ``messages`` in order and wait for all their confirmations. Each publish takes the
        channel's lock in the order its task starts (FIFO), so the broker gets them in this order;
        only the waits for confirmation overlap."""
        sends = [
            asyncio.create_task(
                self._exchanges[m.exchange].publish(
                    aio_pika.Message(
                        m.body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT if m.persistent else None,
                        message_id=m.message_id,
                        correlation_id=m.correlation_id,
                        headers=m.headers,
                    ),
                    routing_key=m.routing_key,
                    mandatory=False,
                )
            )
            for m in messages
        ]
        try:
            _, unconfirmed = await asyncio.wait(sends, timeout=CONFIRM_TIMEOUT)
        finally:
            for send in sends:
                send.cancel()  # those still waiting (this task stopped, or the time is up)
        if unconfirmed:
            raise ConnectionError(f"no confirmation in {CONFIRM_TIMEOUT} s")
        if any(send.cancelled() for send in sends):  # not by this task: the channel's doing
            raise PublishCancelledError()
        if errors := [error for send in sends if (error := send.exception()) is not None]:
            raise errors[0]  # every one read, so none is reported as never retrieved
        for m in messages:
            destination = m.routing_key if m.exchange == "events" else m.routing_key.partition(".")[0]
            self._published.labels(m.exchange, destination).inc()

    async def send(self, event_id: str, sends: tuple[Send, ...]) -> None:
        """Client deliveries that are no event of this worker's (derived from another's event)."""
        if sends:
            await self.publish([delivery_message(routed(event_id, send)) for send in sends])

    async def flush(self, doc: Aggregate, entries: list[OutboxEntry]) -> None:
        """Store, publish, then clear ``entries`` from ``doc``'s outbox (at least once)."""
        if not entries:
            return
        for entry in entries:
            await _store(entry)
        await self.publish([message for entry in entries for message in entry.messages()])
        await clear_outbox(doc, [entry.event_id for entry in entries])

    async def reply(self, caller: Caller, reply: Reply) -> None:
        """Send a command's reply on its own, to the caller's queue (the default exchange)."""
        await self._broker.publish(
            reply.model_dump(mode="json", exclude_none=True),
            routing_key=caller.reply_to,
            correlation_id=caller.correlation_id,
        )

    async def relay_forever(self) -> None:
        """Publish what a crash left behind in any outbox; runs in every replica."""
        while True:
            try:
                await self.relay_once()
            except Exception:  # keep relaying: the next pass may succeed
                log.exception("outbox relay failed")
            await asyncio.sleep(RELAY_EVERY)

    async def relay_once(self, older_than: timedelta = RELAY_AFTER) -> int:
        cutoff = datetime.now(UTC) - older_than
        count = 0
        for model in self._aggregates:
            query = {"outbox_since": {"$lte": cutoff.timestamp()}}
            async for raw in model.get_pymongo_collection().find(query):
                doc = model.model_validate(raw)
                stale = [e for e in doc.outbox if e.occurred_at <= cutoff]
                if stale:
                    await self.flush(doc, stale)
                else:  # only fresh entries: their own writer is publishing them; just re-date
                    await clear_outbox(doc, [])
                count += len(stale)
        if count:
            log.info("outbox relayed", events=count)
        return count


async def _store(entry: OutboxEntry) -> None:
    try:
        await StoredEvent(id=entry.event_id, **entry.model_dump(exclude={"event_id"})).insert()
    except DuplicateKeyError:
        pass  # stored by an earlier attempt
