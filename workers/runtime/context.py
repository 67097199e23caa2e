"""The ports a handler may use: the process's ``Runtime`` (with its mirrors' state in ``memory``:
``reload``, ``reflect``) and the ``Context`` of one command or reaction (who caused it, commit, ask
another worker)."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from pydantic import BaseModel

from boochat.rpc import RpcClient
from boochat.settings import Settings
from contracts.envelope import AnyEvent, Command, Fact, Failure
from contracts.errors import Rejected
from contracts.internal import ApplyEvents, ResolveUsers, Users
from contracts.shapes import User
from workers.runtime.outbox import Caller, Cause, Outbox, envelope, stamp
from workers.runtime.store import Aggregate, ConcurrencyError, write
from workers.runtime.tables import Mirror, Projection

log = structlog.get_logger()

ATTEMPTS = 20  # optimistic-concurrency retries before giving up
# Seconds a mirror's reload reads back before its previous load began: more than the clocks of the
# processes that write a mirror's documents differ by, and than a write takes to land.
RELOAD_OVERLAP = 60.0


class Runtime:
    """What one worker process shares between its handlers, built once by ``create``."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        rpc: RpcClient | None,
        projections: Iterable[Projection] = (),
        followers: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.rpc = rpc
        self.projections = tuple(projections)
        self.followers = followers or {}
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        # Caches a worker keeps in this process (never the truth: a conditional write checks each),
        # and the state of its mirrors, by mirror name (see ``reload``).
        self.memory: dict[str, Any] = {}
        self.loaded_at: dict[str, float] = {}  # when each mirror's last successful load began (epoch s)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def project(self, events: list[AnyEvent]) -> None:
        """Apply the worker's projections to events it just committed (read-your-writes)."""
        for event in events:
            for projection in self.projections:
                if event.type in projection.payloads:
                    await project(projection, event)

    async def hand_over(self, events: list[AnyEvent], cause: Cause) -> None:
        """Give the followers the events they copy, and wait until they have applied them. A follower
        that does not answer gets them from its queue a little later; the command still succeeds."""
        for worker, types in self.followers.items():
            if mine := [e.model_dump(mode="json") for e in events if e.type in types]:
                command = Command(
                    type="apply_events",
                    id=cause.correlation_id or "-",
                    user_id=cause.actor_id or "-",
                    data=ApplyEvents(events=mine).model_dump(mode="json"),
                )
                assert self.rpc is not None
                reply = await self.rpc.call(worker, command)
                if reply.error is not None:
                    log.warning("follower did not apply events", follower=worker, code=reply.error.code)

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


async def project(projection: Projection, event: AnyEvent) -> None:
    """Apply ``event``; a projection may raise ``ConcurrencyError`` to be applied again."""
    payload = projection.payloads[event.type].model_validate(event.payload)
    for _ in range(ATTEMPTS):
        try:
            return await projection.apply(payload, event)
        except ConcurrencyError:
            continue
    raise ConcurrencyError(event.event_id)


async def reload(runtime: Runtime, name: str, mirror: Mirror) -> None:
    """Merge what mirror ``name`` loads into its state in this process, ``runtime.memory[name]``
    (empty before the first load). The state is updated in place: handlers holding it see the merge.

    The first load reads the whole state; each later one what was stored since ``RELOAD_OVERLAP``
    before the previous successful one began, so a write that lands late, or by a process whose
    clock is behind, is still read (reading something twice changes nothing)."""
    started = time.time()
    since = runtime.loaded_at.get(name)
    loaded = await mirror.load(None if since is None else since - RELOAD_OVERLAP)
    mirror.merge(runtime.memory.setdefault(name, {}), loaded)
    runtime.loaded_at[name] = started


def reflect(runtime: Runtime, name: str, mirror: Mirror, event: AnyEvent) -> None:
    """Apply ``event`` to mirror ``name``'s state in this process (loaded first by ``reload``)."""
    mirror.apply(mirror.payloads[event.type].model_validate(event.payload), event, runtime.memory[name])


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
            await self.runtime.outbox.flush(doc, sorted(doc.outbox, key=lambda e: e["version"]))
        except Exception as error:  # written is done: the relay publishes what is left in the outbox
            log.warning("publish failed; the relay will publish", error=repr(error), aggregate_id=doc.id)
        events = [AnyEvent.model_validate(envelope(entry)) for entry in entries]
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
