"""Internal envelopes: a command on its way to a worker, its reply, a domain event, a delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.common import Time
from contracts.errors import REMEMBERED, ErrorCode

P = TypeVar("P", bound=BaseModel)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Command(Envelope):
    """A client request (or a worker's internal request) travelling to its owner.

    ``id`` is the client's frame id: the idempotency key (with ``user_id`` and ``type``) and the
    correlation id of everything the command causes.
    """

    type: str
    id: str
    user_id: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.user_id}\x1f{self.type}\x1f{self.id}"


class Failure(Envelope):
    code: ErrorCode
    message: str
    details: dict[str, str] | None = None


class Reply(Envelope):
    """What a worker answers: ``ok`` data, or an error."""

    ok: dict[str, Any] | None = None
    error: Failure | None = None

    @classmethod
    def of(cls, result: BaseModel) -> Reply:
        """The ``ok`` reply carrying a handler's result."""
        return cls(ok=result.model_dump(mode="json"))

    @property
    def remembered(self) -> bool:
        """Outcomes kept for the idempotency key (PROTOCOL.md: commands and idempotency)."""
        return self.error is None or self.error.code in REMEMBERED


class Event(Envelope, Generic[P]):
    """A domain event: a fact a worker stored, then published on ``<ns>.events``."""

    event_id: str
    type: str
    aggregate_id: str
    version: int
    occurred_at: Time
    actor_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    payload: P


class AnyEvent(Event[Any]):
    """An event whose payload the reader does not interpret."""

    payload: dict[str, Any]


class Rider(Envelope):
    """A client event for one user's connections (``key``: their ``user_key``) that travels inside a
    room delivery to a member of that room: every gateway holding the member's connections is bound
    to the room, so one broker message serves both."""

    id: str
    key: str
    event: str
    data: dict[str, Any]


class CarriedReply(Envelope):
    """The reply to the command that caused a delivery, riding on it to the caller: the delivery is
    routed to the caller's own key too (``contracts.routing.REPLY_KEY``), so one broker message
    serves both. Every other gateway it reaches ignores it (the correlation id is not theirs)."""

    correlation_id: str
    reply: Reply


class Delivery(Envelope):
    """A client event on its way to the gateways, routed by room, by user or to everyone.

    ``id`` lets a gateway drop a copy it has already delivered to a connection. ``riders`` go to
    their own users' connections on the gateways this delivery reaches; ``reply`` to the caller.
    """

    id: str
    event: str
    data: dict[str, Any]
    riders: list[Rider] = []
    reply: CarriedReply | None = None


def occurred(value: datetime) -> datetime:
    """Events keep millisecond precision, like everything Boochat sends."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Send:
    """A client event a fact sends: to ``key`` (``room_key``, ``user_key`` or ``EVERYONE``)."""

    key: str
    event: str
    data: BaseModel
    riders: tuple[Send, ...] = ()  # to user keys of members of the room ``key`` names (``Rider``)


@dataclass(frozen=True)
class Fact:
    """An event a domain decided on, before it is numbered, stamped and stored."""

    type: str
    aggregate_id: str
    payload: BaseModel
    sends: tuple[Send, ...] = ()
    also: tuple[str, ...] = ()  # more routing keys for the event (``contracts.routing``), besides its type
