"""Documents every worker has, and the conditional write of an aggregate with its new events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class ConcurrencyError(Exception):
    """Someone else wrote the aggregate first: load it again and decide again."""


class Aggregate(Document):
    """Base of every aggregate document: its state fields, plus these."""

    id: str  # type: ignore[assignment]
    revision: int = 0  # bumped by every write: the optimistic-concurrency check
    version: int = 0  # number of events the aggregate has produced
    outbox: list[dict[str, Any]] = Field(default_factory=list)
    # When the oldest outbox entry was written (Unix seconds; a number, so the relay's query and
    # updates behave the same everywhere), or None when the outbox is empty.
    outbox_since: float | None = None


class StoredEvent(Document):
    id: str  # type: ignore[assignment]  # the event_id
    type: str
    aggregate_id: str
    version: int
    occurred_at: datetime
    actor_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    payload: dict[str, Any]
    command_key: str | None = None
    reply: dict[str, Any] | None = None
    deliveries: list[dict[str, Any]] = Field(default_factory=list)

    class Settings:
        name = "events"
        indexes = [
            IndexModel([("aggregate_id", ASCENDING), ("version", ASCENDING)], unique=True),
            IndexModel([("command_key", ASCENDING)]),
        ]


class ProcessedCommand(Document):
    """The remembered reply of a command, by its idempotency key, for 24 hours."""

    id: str  # type: ignore[assignment]
    reply: dict[str, Any]
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    class Settings:
        name = "commands"
        indexes = [IndexModel([("at", ASCENDING)], expireAfterSeconds=int(IDEMPOTENCY_WINDOW.total_seconds()))]


class AppliedEvent(Document):
    """An event a reaction has applied: ``<reaction>:<event_id>``."""

    id: str  # type: ignore[assignment]

    class Settings:
        name = "applied"


RUNTIME_DOCUMENTS: list[type[Document]] = [StoredEvent, ProcessedCommand, AppliedEvent]


async def write(doc: Aggregate, new_events: list[dict[str, Any]]) -> None:
    """Write ``doc`` (read at ``doc.revision``) with ``new_events`` appended to its outbox, atomically.

    A whole-document replace conditioned on the revision: one atomic single-document write that
    behaves the same on MongoDB and on the stand-in. Raises ``ConcurrencyError`` when the document
    changed since it was read (or, for a new one, already exists).
    """
    collection = type(doc).get_pymongo_collection()
    expected = doc.revision
    doc.revision += 1
    doc.version += len(new_events)
    doc.outbox = doc.outbox + new_events
    if doc.outbox and doc.outbox_since is None:
        doc.outbox_since = min(e["occurred_at"] for e in doc.outbox).timestamp()
    body = doc.model_dump(by_alias=True, exclude={"revision_id"})
    try:
        if expected == 0:
            await collection.insert_one(body)
            return
        result = await collection.replace_one({"_id": doc.id, "revision": expected}, body)
    except DuplicateKeyError:
        raise ConcurrencyError(doc.id) from None
    if result.matched_count == 0:
        raise ConcurrencyError(doc.id)


async def clear_outbox(doc: Aggregate, event_ids: list[str]) -> None:
    """Drop published events from ``doc``'s outbox; the revision moves so no stale copy writes them back."""
    collection = type(doc).get_pymongo_collection()
    remaining = [e for e in doc.outbox if e["event_id"] not in event_ids]
    since = min(e["occurred_at"] for e in remaining).timestamp() if remaining else None
    result = await collection.update_one(
        {"_id": doc.id, "revision": doc.revision},
        {"$set": {"outbox": remaining, "outbox_since": since}, "$inc": {"revision": 1}},
    )
    if result.matched_count == 0:  # written meanwhile: take out just ours; the relay tidies the rest
        await collection.update_one(
            {"_id": doc.id}, {"$pull": {"outbox": {"event_id": {"$in": event_ids}}}, "$inc": {"revision": 1}}
        )
    else:
        doc.revision += 1
    doc.outbox = remaining
