"""The ports a handler may use: the process's ``Runtime`` (what it keeps in memory: ``kept``) and the
``Context`` of one command or reaction (who caused it, commit, ask another worker)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar, cast

import aio_pika
import structlog
from pydantic import BaseModel

from boochat.rpc import RpcClient
from boochat.settings import Settings
from contracts.common import Shape
from contracts.envelope import AnyEvent, Command, Fact, Failure
from contracts.errors import Rejected
from contracts.internal import INTERNAL, HandOver, ResolveUsers, Users
from contracts.shapes import User
from workers.runtime.outbox import Caller, Cause, Outbox, stamp
from workers.runtime.store import Aggregate, write

log = structlog.get_logger()

ATTEMPTS = 20  # optimistic-concurrency retries before giving up
HAND_OVER_SHARE = 0.5  # of the request timeout: how long a hand-over waits for the followers

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Kept(Generic[T]):
    """Something each worker process keeps in memory (a cache, a mirror's replica): declared once
    at module level, so a reader can jump to it; ``Runtime.kept(KEY)`` is this process's, made by
    ``new()`` on first use. Never the truth: what it says is checked by a conditional write, or it is
    a replica kept by events."""

    name: str
    new: Callable[[], T] = field(repr=False)


class Projects(Protocol):
    """What ``Context.commit`` applies the worker's own new events to (``tables.Projection``)."""

    @property
    def payloads(self) -> Mapping[str, type[Shape]]: ...

    def run(self, event: AnyEvent) -> Awaitable[None]: ...


class Runtime:
    """What one worker process shares between its handlers, built once by ``create``."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        rpc: RpcClient | None,
        projections: Iterable[Projects] = (),
        followers: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.rpc = rpc
        self.projections = tuple(projections)
        self.followers = followers or {}
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._kept: dict[Kept[Any], Any] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def kept(self, key: Kept[T]) -> T:
        """What this process keeps under ``key``."""
        if key not in self._kept:
            self._kept[key] = key.new()
        return cast(T, self._kept[key])

    async def project(self, events: list[AnyEvent]) -> None:
        """Apply the worker's projections to events it just committed (read-your-writes)."""
        for event in events:
            for projection in self.projections:
                if event.type in projection.payloads:
                    await projection.run(event)

    async def hand_over(self, events: list[AnyEvent], cause: Cause) -> None:
        """Hand ``events`` to the followers that copy them, each by its own command (``followers``:
        the command's type, the event types it takes), all at once, and wait until every one has
        applied them: only then may the command answer ok. Raises ``HandOverFailed`` when one did not
        (the events are stored: a retry of the command hands them over again, see ``dispatch``)."""
        calls = {
            type: mine for type, types in self.followers.items() if (mine := [e for e in events if e.type in types])
        }
        if not calls:
            return
        assert self.rpc is not None
        # Less than the caller's own wait, so its answer is ``unavailable`` rather than its timeout.
        timeout = self.settings.request_timeout_seconds * HAND_OVER_SHARE
        replies = await asyncio.gather(
            *(self.rpc.call(INTERNAL[type].owner, _handing(type, mine, cause), timeout) for type, mine in calls.items())
        )
        if failed := {type: reply.error.code for type, reply in zip(calls, replies, strict=True) if reply.error}:
            log.warning("followers did not apply the change", failed=failed)
            raise HandOverFailed(failed)

    def lock(self, key: str) -> asyncio.Lock:
        """One lock per aggregate in this process: concurrent commands on a hot aggregate (a busy
        room) wait their turn instead of racing and retrying; replicas still race, and the
        revision check settles that."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Context:
    """One command or reaction being handled; ``event`` is the envelope a reaction reacts to,
    ``caller`` who waits for a command's reply (None: nobody, or a test)."""

    runtime: Runtime
    cause: Cause
    user_id: str | None = None
    event: AnyEvent | None = None
    caller: Caller | None = None

    def now(self) -> datetime:
        return self.runtime.now()

    def lock(self, key: str) -> asyncio.Lock:
        return self.runtime.lock(key)

    async def commit(self, doc: Aggregate, facts: list[Fact], reply: BaseModel | None = None) -> list[AnyEvent]:
        """Write ``doc`` with ``facts`` as its next events, publish them, apply this worker's
        projections and hand them to its followers; returns the events."""
        now = self.now()
        entries = [
            stamp(fact, doc.version + i + 1, self.cause, now, reply if i == 0 else None) for i, fact in enumerate(facts)
        ]
        await write(doc, entries)
        # Everything still in the outbox, in version order: an earlier writer (another replica) may
        # not have published its events yet, and publishing after it would swap the room's order.
        try:
            await self.runtime.outbox.flush(doc, sorted(doc.outbox, key=lambda e: e.version))
        except Exception as error:  # written is done: the relay publishes what is left in the outbox
            log.warning("publish failed; the relay will publish", error=repr(error), aggregate_id=doc.id)
        events = [entry.event() for entry in entries]
        await self.runtime.project(events)
        await self.runtime.hand_over(events, self.cause)
        return events

    async def ask(self, worker: str, type: str, data: BaseModel, user_id: str | None = None) -> dict[str, Any]:
        """A request to another worker, on behalf of ``user_id`` (default: this context's user); its
        refusal is re-raised."""
        assert self.runtime.rpc is not None
        command = Command(
            type=type,
            id=self.cause.correlation_id or "-",
            user_id=user_id or self.user_id or "-",
            data=data.model_dump(mode="json"),
        )
        reply = await self.runtime.rpc.call(worker, command)
        if reply.error is not None:
            raise Forwarded(reply.error)
        return reply.ok or {}

    async def users(self, ids: list[str]) -> dict[str, User]:
        """The known users among ``ids``, by id, as the users worker has them."""
        reply = await self.ask("users", "resolve_users", ResolveUsers(ids=ids))
        return {user.id: user for user in Users.model_validate(reply).users}


class Forwarded(Rejected):  # noqa: N818
    """A refusal decided elsewhere, passed on as it came: another worker's, or the remembered
    refusal of the first copy of a command."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message, failure.details)
        self.code = failure.code


class HandOverFailed(Rejected):  # noqa: N818
    """A follower did not apply what the command changed (it failed, or did not answer in time): the
    change is stored, but the command may not answer ok yet. Not remembered: a retry hands it over."""

    code = "unavailable"

    def __init__(self, failed: Mapping[str, str]) -> None:
        super().__init__("not every worker that copies this change has applied it; retry with the same id")
        self.failed = failed  # follower command -> its error code


def _handing(type: str, events: list[AnyEvent], cause: Cause) -> Command:
    """The hand-over command ``type`` of ``events``, on behalf of the command that caused them."""
    data = HandOver(events=events).model_dump(mode="json")
    return Command(type=type, id=cause.correlation_id or "-", user_id=cause.actor_id or "-", data=data)
