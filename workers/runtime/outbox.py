"""From facts to published events: stamping, the event store, publishing with confirms, the relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import structlog
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from contracts.envelope import CarriedReply, Delivery, Fact, Reply, Rider, Send, occurred
from contracts.routing import Names
from workers.runtime.store import Aggregate, StoredEvent, clear_outbox

log = structlog.get_logger()

RELAY_EVERY = 2.0  # seconds between relay passes
RELAY_AFTER = timedelta(seconds=5)  # an outbox entry this old was left behind by a crash
BATCH = 100  # entries published together
# Confirmed entries are marked published in one write per this many seconds, not one per publish:
# under load that write would be a second per send. A crash leaves at most this long unmarked,
# which the relay publishes again (consumers drop what they had). Shorter than RELAY_AFTER.
MARK_EVERY = 1.0
MARK_BATCH = 1000  # entries marked by one write at most


@dataclass(frozen=True)
class Cause:
    """Who and what caused the events being written: carried into every event's envelope."""

    actor_id: str | None
    correlation_id: str | None
    causation_id: str | None
    command_key: str | None = None


@dataclass
class Caller:
    """Who waits for a command's reply: their queue and correlation id, and the deliveries key they
    offered (header ``REPLY_KEY``; None: none), under which the reply may ride on a delivery the
    command causes instead of travelling on its own (``carry``)."""

    reply_to: str
    correlation_id: str
    key: str | None = None
    carried: bool = False  # the reply rides on a delivery: nothing more to send


def carry(entry: dict[str, Any], caller: Caller | None, reply: BaseModel) -> dict[str, Any]:
    """``entry`` to publish with ``reply`` (a handler's result) riding on its first delivery, which
    also goes to the caller's key, and ``caller`` marked ``carried``; ``entry`` itself when the
    caller offered no key or there is no delivery. What is stored stays as it was: a copy the relay
    publishes again carries no reply."""
    if caller is None or caller.key is None or not entry["deliveries"]:
        return entry
    first, *rest = entry["deliveries"]
    carried = CarriedReply(correlation_id=caller.correlation_id, reply=Reply.of(reply))
    body = {**first["body"], "reply": carried.model_dump(mode="json", exclude_none=True)}
    caller.carried = True
    return {**entry, "deliveries": [{**first, "body": body, "also": [caller.key]}, *rest]}


def stamp(fact: Fact, version: int, cause: Cause, now: datetime, reply: BaseModel | None = None) -> dict[str, Any]:
    """The stored form of a fact: an event envelope plus what it sends to clients."""
    event_id = uuid.uuid4().hex
    return {
        "event_id": event_id,
        "type": fact.type,
        "aggregate_id": fact.aggregate_id,
        "version": version,
        "occurred_at": occurred(now),
        "actor_id": cause.actor_id,
        "correlation_id": cause.correlation_id,
        "causation_id": cause.causation_id,
        "payload": fact.payload.model_dump(mode="json"),
        "command_key": cause.command_key,
        "reply": reply.model_dump(mode="json") if reply is not None else None,
        "deliveries": [_delivery(event_id, send) for send in fact.sends],
        "also": list(fact.also),
    }


def _delivery(event_id: str, send: Send) -> dict[str, Any]:
    """A delivery's id derives from its event, so a gateway drops a second copy of it."""
    riders = [
        Rider(id=f"{event_id}/{r.event}", key=r.key, event=r.event, data=r.data.model_dump(mode="json"))
        for r in send.riders
    ]
    data = send.data.model_dump(mode="json")
    body = Delivery(id=f"{event_id}/{send.event}", event=send.event, data=data, riders=riders)
    return {"key": send.key, "body": body.model_dump(mode="json", exclude_defaults=True)}


def envelope(entry: dict[str, Any]) -> dict[str, Any]:
    """The published body of a stored event: the envelope of ARCHITECTURE.md, nothing internal."""
    body = {
        k: entry[k]
        for k in (
            "event_id",
            "type",
            "aggregate_id",
            "version",
            "actor_id",
            "correlation_id",
            "causation_id",
            "payload",
        )
    }
    body["occurred_at"] = entry["occurred_at"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body


Published = Callable[[list[dict[str, Any]]], Awaitable[None]]


class Outbox:
    def __init__(self, broker: RabbitBroker, names: Names, aggregates: list[type[Aggregate]]) -> None:
        self._broker = broker
        self._aggregates = aggregates
        self._events = RabbitExchange(names.events, type=ExchangeType.TOPIC, declare=False)
        self._deliveries = RabbitExchange(names.deliveries, type=ExchangeType.TOPIC, declare=False)
        # Entries stored elsewhere (room items), published in the order they were queued, then marked
        # by a task of their own, so a marking write never holds up the next publish.
        self._later: asyncio.Queue[tuple[dict[str, Any], Published]] = asyncio.Queue()
        self._confirmed: asyncio.Queue[tuple[dict[str, Any], Published]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._mark_now = asyncio.Event()  # set by ``drain``: mark what is confirmed without waiting
        self.pending: set[str] = set()  # event ids queued here and not yet marked: the relay leaves them
        self._exchanges: tuple[aio_pika.abc.AbstractExchange, aio_pika.abc.AbstractExchange] | None = None
        self._names = names

    async def attach(self, channel: aio_pika.abc.AbstractChannel) -> None:
        """A confirming channel of the worker's own for ``publish_later``: publishes are written in
        order and their confirmations awaited together, so a busy room's events keep up."""
        self._exchanges = (
            await channel.get_exchange(self._names.events, ensure=False),
            await channel.get_exchange(self._names.deliveries, ensure=False),
        )

    def publish_later(self, entry: dict[str, Any], published: Published) -> None:
        """Publish ``entry`` after those queued before it, off the caller's path; ``published`` is
        called with each batch of confirmed entries (one write marks a whole batch)."""
        self._later.put_nowait((entry, published))
        self.pending.add(entry["event_id"])
        if not self._tasks or any(task.done() for task in self._tasks):
            for task in self._tasks:
                task.cancel()
            self._tasks = [asyncio.create_task(self._publish_queued()), asyncio.create_task(self._mark_confirmed())]

    async def drain(self) -> None:
        """Wait until everything queued by ``publish_later`` is published and marked."""
        await self._later.join()
        self._mark_now.set()
        try:
            await self._confirmed.join()
        finally:
            self._mark_now.clear()

    async def _publish_queued(self) -> None:
        while True:
            batch = [await self._later.get()]
            while not self._later.empty() and len(batch) < BATCH:
                batch.append(self._later.get_nowait())
            try:
                await self._publish_batch([entry for entry, _ in batch])
                for item in batch:
                    self._confirmed.put_nowait(item)
            except Exception:  # the relay publishes what is left unmarked
                log.exception("queued publish failed")
                self.pending.difference_update(entry["event_id"] for entry, _ in batch)
            finally:
                for _ in batch:
                    self._later.task_done()

    async def _publish_batch(self, entries: list[dict[str, Any]]) -> None:
        """Every message of ``entries``, written in order, confirmations awaited together; on any
        failure the whole batch again, one by one (at least once: consumers drop what they had)."""
        if self._exchanges is None:
            for entry in entries:
                await self._publish_retrying(entry)
            return
        events, deliveries = self._exchanges
        # Each publish takes the channel's lock in the order the tasks start (FIFO), so the broker
        # gets them in this order; only the waits for confirmation overlap.
        sends = [
            asyncio.create_task(exchange.publish(message, routing_key=key, mandatory=False))
            for entry in entries
            for exchange, message, key in _messages(entry, events, deliveries)
        ]
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        if failed := [o for o in outcomes if isinstance(o, BaseException)]:
            log.warning("batch publish failed; publishing again", error=repr(failed[0]), messages=len(sends))
            for entry in entries:
                await self._publish_retrying(entry)

    async def _mark_confirmed(self) -> None:
        """One write per ``MARK_EVERY`` for the entries confirmed meanwhile (per kind of entry)."""
        while True:
            batch = [await self._confirmed.get()]
            if not self._mark_now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._mark_now.wait(), MARK_EVERY)
            while not self._confirmed.empty() and len(batch) < MARK_BATCH:
                batch.append(self._confirmed.get_nowait())
            try:
                for published in {id(p): p for _, p in batch}.values():
                    await published([entry for entry, p in batch if p is published])
            except Exception:  # the relay publishes again what is left unmarked: at least once
                log.exception("marking published entries failed")
            finally:
                self.pending.difference_update(entry["event_id"] for entry, _ in batch)
                for _ in batch:
                    self._confirmed.task_done()

    async def _publish_retrying(self, entry: dict[str, Any]) -> None:
        for delay in (0.1, 0.5, 1.0, 2.0):
            try:
                return await self.publish(entry)
            except Exception as error:  # the broker reconnects by itself meanwhile
                log.warning("publish failed; retrying", error=repr(error), retry_in=delay)
                await asyncio.sleep(delay)
        await self.publish(entry)

    async def send(self, event_id: str, sends: tuple[Send, ...]) -> None:
        """Client deliveries that are no event of this worker's (derived from another's event)."""
        for send in sends:
            await self._deliver(_delivery(event_id, send))

    async def flush(self, doc: Aggregate, entries: list[dict[str, Any]]) -> None:
        """Store, publish, then clear ``entries`` from ``doc``'s outbox (at least once)."""
        if not entries:
            return
        for entry in entries:
            await self._store(entry)
            await self.publish(entry)
        await clear_outbox(doc, [entry["event_id"] for entry in entries])

    async def _store(self, entry: dict[str, Any]) -> None:
        fields = {k: v for k, v in entry.items() if k != "event_id"}
        try:
            await StoredEvent(id=entry["event_id"], **fields).insert()
        except DuplicateKeyError:
            pass  # stored by an earlier attempt

    async def publish(self, entry: dict[str, Any]) -> None:
        await self._broker.publish(
            envelope(entry),
            exchange=self._events,
            routing_key=entry["type"],
            persist=True,
            message_id=entry["event_id"],
            correlation_id=entry["correlation_id"],
            headers=_also(entry),
        )
        for delivery in entry["deliveries"]:
            await self._deliver(delivery)

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        await self._broker.publish(
            delivery["body"],
            exchange=self._deliveries,
            routing_key=delivery["key"],
            mandatory=False,
            headers=_also(delivery),
        )

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
                stale = [e for e in doc.outbox if _aware(e["occurred_at"]) <= cutoff]
                if stale:
                    await self.flush(doc, stale)
                else:  # only fresh entries: their own writer is publishing them; just re-date
                    await clear_outbox(doc, [])
                count += len(stale)
        if count:
            log.info("outbox relayed", events=count)
        return count


def _messages(
    entry: dict[str, Any], events: aio_pika.abc.AbstractExchange, deliveries: aio_pika.abc.AbstractExchange
) -> list[tuple[aio_pika.abc.AbstractExchange, aio_pika.Message, str]]:
    """The event of ``entry`` (persistent) and its client deliveries, as the FastStream path sends them."""
    event = aio_pika.Message(
        json.dumps(envelope(entry)).encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=entry["event_id"],
        correlation_id=entry["correlation_id"],
        headers=_also(entry),
    )
    sent = [(events, event, entry["type"])]
    for delivery in entry["deliveries"]:
        body = aio_pika.Message(
            json.dumps(delivery["body"]).encode(), content_type="application/json", headers=_also(delivery)
        )
        sent.append((deliveries, body, delivery["key"]))
    return sent


def _also(entry: dict[str, Any]) -> dict[str, Any] | None:
    """RabbitMQ's ``CC`` header: an event or a delivery is routed under these keys too
    (sender-selected distribution; a queue bound to several of them still gets it once)."""
    return {"CC": entry["also"]} if entry.get("also") else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
