"""Documents every worker has, and the conditional write of an aggregate with its new events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, get_type_hints

from beanie import Document
from pydantic import Field, create_model
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, PyMongoError

from workers.runtime.entries import OutboxEntry, Routed

IDEMPOTENCY_WINDOW = timedelta(hours=24)
CLAIM_POLL_SECONDS = 0.02  # first wait of a copy of a command for the first one's outcome
# A copy still acting re-dates its claim this often (a share of the time after which a claim is taken
# to be a crashed copy's), so a slow copy is never taken over while it runs.
HEARTBEAT_SHARE = 1 / 3


class ConcurrencyError(Exception):
    """Someone else wrote the aggregate first: load it again and decide again."""


class Aggregate(Document):
    """Base of every aggregate document: its state fields, plus these."""

    id: str  # type: ignore[assignment]  # string ids (Beanie declares an ObjectId)
    revision: int = 0  # bumped by every write: the optimistic-concurrency check
    version: int = 0  # number of events the aggregate has produced
    outbox: list[OutboxEntry] = Field(default_factory=list)
    # When the oldest outbox entry was written (Unix seconds; a number, so the relay's query and
    # updates behave the same everywhere), or None when the outbox is empty.
    outbox_since: float | None = None


class StoredEvent(Document):
    """An aggregate's event once published from its outbox: an ``OutboxEntry``, kept."""

    id: str  # type: ignore[assignment]  # the event_id (Beanie declares an ObjectId)
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
    deliveries: list[Routed] = Field(default_factory=list)
    also: list[str] = Field(default_factory=list)  # more routing keys (``Fact.also``)

    def entry(self) -> OutboxEntry:
        return OutboxEntry.model_validate({**self.model_dump(exclude={"id", "revision_id"}), "event_id": self.id})

    class Settings:
        name = "events"
        indexes = [
            IndexModel([("aggregate_id", ASCENDING), ("version", ASCENDING)], unique=True),
            IndexModel([("command_key", ASCENDING)]),
        ]


class ProcessedCommand(Document):
    """A command's idempotency key, claimed before it acts; ``reply`` is its remembered outcome, None
    while the first copy is still acting. Kept for 24 hours."""

    id: str  # type: ignore[assignment]  # string ids (Beanie declares an ObjectId)
    reply: dict[str, Any] | None = None
    claimed_at: float = 0.0  # Unix seconds: a claim left pending this long was cut off by a crash
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    class Settings:
        name = "commands"
        indexes = [IndexModel([("at", ASCENDING)], expireAfterSeconds=int(IDEMPOTENCY_WINDOW.total_seconds()))]


RUNTIME_DOCUMENTS: list[type[Document]] = [StoredEvent, ProcessedCommand]


@dataclass(frozen=True)
class Claim:
    """``ours``: this copy of the command acts (``taken_over``: from a copy that crashed, which may
    have committed already); otherwise ``reply`` is the first copy's outcome."""

    ours: bool
    reply: dict[str, Any] | None = None
    taken_over: bool = False
    claimed_at: float = 0.0  # ours: the claim's date, which ``kept_fresh`` moves on


async def claim(key: str, stale_after: float) -> Claim:
    """Claim ``key`` for this copy of a command, or wait for the outcome of the copy that has it.

    A claim still pending ``stale_after`` seconds after it was made belongs to a copy that crashed:
    it is taken over, and the caller checks what that copy had already done.
    """
    collection = ProcessedCommand.get_pymongo_collection()
    now = _now()
    try:
        await collection.insert_one(ProcessedCommand(id=key, claimed_at=now).model_dump(by_alias=True))
        return Claim(ours=True, claimed_at=now)
    except DuplicateKeyError:
        pass
    delay = CLAIM_POLL_SECONDS
    while True:
        found = await collection.find_one({"_id": key})
        if found is None:  # the first copy gave up (no outcome to remember): act
            return await claim(key, stale_after)
        if found.get("reply") is not None:
            return Claim(ours=False, reply=found["reply"])
        now = _now()
        if now - found["claimed_at"] >= stale_after:
            taken = await collection.update_one(
                {"_id": key, "claimed_at": found["claimed_at"]}, {"$set": {"claimed_at": now}}
            )
            if taken.modified_count:
                return Claim(ours=True, taken_over=True, claimed_at=now)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _now() -> float:
    """Unix seconds to the millisecond: a claim's date is matched exactly by the next write, and the
    Mongo stand-in keeps about 15 significant digits of a float written by ``$set``."""
    return round(time.time(), 3)


@asynccontextmanager
async def kept_fresh(key: str, claimed: Claim, stale_after: float) -> AsyncIterator[None]:
    """While the body runs, the claim on ``key`` is re-dated every ``HEARTBEAT_SHARE`` of
    ``stale_after``: only a copy that stopped (a crash) leaves a claim to go stale and be taken over."""
    beating = asyncio.create_task(_heartbeat(key, claimed.claimed_at, stale_after * HEARTBEAT_SHARE))
    try:
        yield
    finally:
        beating.cancel()
        with suppress(asyncio.CancelledError):
            await beating


async def _heartbeat(key: str, claimed_at: float, every: float) -> None:
    collection = ProcessedCommand.get_pymongo_collection()
    while True:
        await asyncio.sleep(every)
        now = _now()
        try:
            fresh = await collection.update_one(
                {"_id": key, "claimed_at": claimed_at, "reply": None}, {"$set": {"claimed_at": now}}
            )
        except PyMongoError:  # the database is unreachable: so is every other copy's claim; next beat
            continue
        if not fresh.modified_count:  # settled, or taken over after all: nothing left to keep
            return
        claimed_at = now


async def abandon(key: str) -> None:
    """Leave the claim on ``key`` as a crashed copy's (this copy raised): the next copy takes it over
    at once and answers what this one committed, if it committed (``dispatch._finish``), or decides."""
    await ProcessedCommand.get_pymongo_collection().update_one(
        {"_id": key, "reply": None}, {"$set": {"claimed_at": 0.0}}
    )


async def settle(key: str, reply: dict[str, Any] | None) -> None:
    """Remember ``reply`` for the claimed ``key``, or with None release the claim (the outcome is
    not one to remember: a retry acts)."""
    collection = ProcessedCommand.get_pymongo_collection()
    if reply is None:
        await collection.delete_one({"_id": key})
    else:
        await collection.update_one({"_id": key}, {"$set": {"reply": reply}})


async def write(doc: Aggregate, new_events: list[OutboxEntry]) -> None:
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
        doc.outbox_since = min(e.occurred_at for e in doc.outbox).timestamp()
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
    remaining = [e for e in doc.outbox if e.event_id not in event_ids]
    since = min(e.occurred_at for e in remaining).timestamp() if remaining else None
    result = await collection.update_one(
        {"_id": doc.id, "revision": doc.revision},
        {"$set": {"outbox": [e.model_dump() for e in remaining], "outbox_since": since}, "$inc": {"revision": 1}},
    )
    if result.matched_count == 0:  # written meanwhile: take out just ours; the relay tidies the rest
        await collection.update_one(
            {"_id": doc.id}, {"$pull": {"outbox": {"event_id": {"$in": event_ids}}}, "$inc": {"revision": 1}}
        )
    else:
        doc.revision += 1
    doc.outbox = remaining


S = TypeVar("S")


class StateDocument(Aggregate, Generic[S]):
    """An aggregate document whose fields are those of a domain dataclass (``state_document``)."""

    state_type: ClassVar[type[Any]]

    def state(self) -> S:
        return cast(S, self.state_type(**{f.name: getattr(self, f.name) for f in fields(self.state_type)}))

    def with_state(self, state: S) -> Self:
        """This document holding ``state`` (to write with ``write`` or ``Context.commit``)."""
        for f in fields(self.state_type):
            setattr(self, f.name, getattr(state, f.name))
        return self

    @classmethod
    def new(cls, state: S) -> Self:
        return cls(**{f.name: getattr(state, f.name) for f in fields(cls.state_type)})


def state_document(
    state_type: type[S], collection: str, indexes: list[IndexModel] | None = None
) -> type[StateDocument[S]]:
    """The Beanie document of ``state_type`` (a dataclass with an ``id: str``), stored in ``collection``:
    its fields plus ``Aggregate``'s; one generic class instead of a hand-copied twin per worker."""
    hints = get_type_hints(state_type)
    columns: dict[str, Any] = {}
    for f in fields(state_type):  # type: ignore[arg-type]  # S is a dataclass; a TypeVar cannot say so
        if f.name == "id":
            continue
        if f.default_factory is not MISSING:
            columns[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        elif f.default is not MISSING:
            columns[f.name] = (hints[f.name], f.default)
        else:
            columns[f.name] = (hints[f.name], ...)
    # ``state_type`` is a value here, which mypy cannot take as a type argument (hence the ignore).
    base = StateDocument[state_type]  # type: ignore[valid-type]
    document = cast(type[StateDocument[S]], create_model(f"{state_type.__name__}Doc", __base__=base, **columns))
    document.state_type = state_type
    # Beanie reads a document's collection and indexes from its inner class ``Settings``, made here.
    document.Settings = type("Settings", (), {"name": collection, "indexes": indexes or []})
    return document
