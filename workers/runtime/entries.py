"""An event as a worker stores it before publishing (``OutboxEntry``), and the one encoder that turns
it into broker messages (``OutboxEntry.messages``), used by every publish."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from contracts.envelope import AnyEvent, CarriedReply, Reply

ENVELOPE = set(AnyEvent.model_fields)  # what is published of an entry


class Routed(BaseModel):
    """One client delivery an event causes: the ``Delivery`` body, routed by ``key`` (and ``also``)."""

    model_config = ConfigDict(frozen=True)

    key: str
    body: dict[str, Any]
    also: list[str] = []


class OutboxEntry(AnyEvent):
    """A stored event with what it sends to clients: kept in an aggregate's ``outbox`` (then the event
    store) or beside a room item, and published from there at least once. The event itself is the
    envelope (``AnyEvent``); the rest never leaves the worker.

    ``command_key`` and ``reply`` say which command committed it and what that command answered, so a
    copy of the command that took over from a crashed one answers the same (``dispatch``).
    """

    command_key: str | None = None
    reply: dict[str, Any] | None = None
    deliveries: list[Routed] = []
    also: list[str] = []  # more routing keys for the event (``Fact.also``)

    def event(self) -> AnyEvent:
        """The event as published: the envelope, nothing internal."""
        return AnyEvent.model_validate(self.model_dump(include=ENVELOPE))

    def carrying(self, reply_key: str, correlation_id: str, reply: Reply) -> OutboxEntry:
        """This entry with ``reply`` riding on its first delivery, which also goes to the caller's
        ``reply_key``: one broker message serves both. Only what is published carries it; what is
        stored stays as it was, so a copy the relay publishes again carries no reply."""
        if not self.deliveries:
            return self
        first, *rest = self.deliveries
        carried = CarriedReply(correlation_id=correlation_id, reply=reply)
        body = {**first.body, "reply": carried.model_dump(mode="json", exclude_none=True)}
        return self.model_copy(update={"deliveries": [Routed(key=first.key, body=body, also=[reply_key]), *rest]})

    def messages(self) -> list[Message]:
        """The event (persistent, on the events exchange) and its client deliveries, in order."""
        event = Message(
            "events",
            self.type,
            self.model_dump_json(include=ENVELOPE).encode(),
            persistent=True,
            message_id=self.event_id,
            correlation_id=self.correlation_id,
            also=tuple(self.also),
        )
        return [event, *(delivery_message(routed) for routed in self.deliveries)]


def delivery_message(routed: Routed) -> Message:
    """A client delivery (transient: a gateway that is gone has nobody to give it to)."""
    return Message("deliveries", routed.key, json.dumps(routed.body).encode(), also=tuple(routed.also))


@dataclass(frozen=True)
class Message:
    """One broker message, encoded: which exchange, its routing key and body. ``also``: RabbitMQ's
    ``CC`` header (sender-selected distribution: routed under these keys too, and a queue bound to
    several of them still gets it once)."""

    exchange: Literal["events", "deliveries"]
    routing_key: str
    body: bytes
    persistent: bool = False
    message_id: str | None = None
    correlation_id: str | None = None
    also: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, Any] | None:
        return {"CC": list(self.also)} if self.also else None
