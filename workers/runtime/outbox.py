"""From facts to published events: stamping, the event store, publishing with confirms, the relay."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Delivery, Fact, occurred
from contracts.routing import Names
from workers.runtime.store import Aggregate, StoredEvent, clear_outbox

log = structlog.get_logger()

RELAY_EVERY = 2.0  # seconds between relay passes
RELAY_AFTER = timedelta(seconds=5)  # an outbox entry this old was left behind by a crash


@dataclass(frozen=True)
class Cause:
    """Who and what caused the events being written: carried into every event's envelope."""

    actor_id: str | None
    correlation_id: str | None
    causation_id: str | None
    command_key: str | None = None


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
        "deliveries": [
            {
                "key": send.key,
                "body": Delivery(
                    id=f"{event_id}/{send.event}", event=send.event, data=send.data.model_dump(mode="json")
                ).model_dump(mode="json"),
            }
            for send in fact.sends
        ],
    }


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


class Outbox:
    def __init__(self, broker: RabbitBroker, names: Names, aggregates: list[type[Aggregate]]) -> None:
        self._broker = broker
        self._aggregates = aggregates
        self._events = RabbitExchange(names.events, type=ExchangeType.TOPIC, declare=False)
        self._deliveries = RabbitExchange(names.deliveries, type=ExchangeType.TOPIC, declare=False)

    async def flush(self, doc: Aggregate, entries: list[dict[str, Any]]) -> None:
        """Store, publish, then clear ``entries`` from ``doc``'s outbox (at least once)."""
        if not entries:
            return
        for entry in entries:
            await self._store(entry)
            await self._publish(entry)
        await clear_outbox(doc, [entry["event_id"] for entry in entries])

    async def _store(self, entry: dict[str, Any]) -> None:
        fields = {k: v for k, v in entry.items() if k != "event_id"}
        try:
            await StoredEvent(id=entry["event_id"], **fields).insert()
        except DuplicateKeyError:
            pass  # stored by an earlier attempt

    async def _publish(self, entry: dict[str, Any]) -> None:
        await self._broker.publish(
            envelope(entry),
            exchange=self._events,
            routing_key=entry["type"],
            persist=True,
            message_id=entry["event_id"],
            correlation_id=entry["correlation_id"],
        )
        for delivery in entry["deliveries"]:
            await self._broker.publish(
                delivery["body"], exchange=self._deliveries, routing_key=delivery["key"], mandatory=False
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


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
