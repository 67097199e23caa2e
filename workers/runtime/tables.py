"""What a worker is: the tables its ``handlers.py`` fills in (commands, reactions, projections,
chores, mirrors) and the workers that keep a copy of its data (followers)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from beanie import Document
from pydantic import BaseModel

from boochat.settings import Settings
from contracts.common import Shape
from contracts.envelope import AnyEvent
from workers.runtime.context import ATTEMPTS, Context, Kept, Runtime
from workers.runtime.outbox import Carried
from workers.runtime.store import ConcurrencyError

S = TypeVar("S")

# Seconds a mirror's reload reads back before its previous load began: more than the clocks of the
# processes that write a mirror's documents differ by, and than a write takes to land.
RELOAD_OVERLAP = 60.0

# A command's or query's handler: its first parameter is exactly its contract's data (``Spec.data``),
# its result the reply (a ``Shape``, or ``Empty``), or ``Carried`` when the reply already rides on a
# delivery; tests/workers/test_tables.py checks each table.
CommandHandler = Callable[[Any, Context], Awaitable[BaseModel | Carried]]


@dataclass(frozen=True)
class Reaction:
    """A worker's reaction to other events: its own queue, bound to the types of ``payloads``, or
    to ``keys`` when it takes only the events also sent under those (``Fact.also``).

    ``handle(payload, ctx)`` receives the typed payload; ``ctx.event`` is the envelope. A reaction
    must be idempotent (a redelivered or replayed event changes nothing more): the runtime keeps no
    list of applied events.
    """

    handle: Callable[[Any, Context], Awaitable[None]]
    payloads: Mapping[str, type[Shape]]
    keys: tuple[str, ...] | None = None

    @property
    def types(self) -> tuple[str, ...]:
        return self.keys or tuple(self.payloads)


@dataclass(frozen=True)
class Projection:
    """A read model kept from events (the worker's own or others'): ``apply(payload, event)`` is
    idempotent, tolerates any order, and publishes nothing.

    Live, it runs from its own queue bound to its event types, and also right after a commit for
    the worker's own events, so what a reply says is readable at once. ``boochat replay`` rebuilds
    ``documents`` by applying it to the whole event log.
    """

    apply: Callable[[Any, AnyEvent], Awaitable[None]]
    payloads: Mapping[str, type[Shape]]
    documents: tuple[type[Document], ...]

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.payloads)

    async def run(self, event: AnyEvent) -> None:
        """Apply ``event``; ``apply`` may raise ``ConcurrencyError`` to be applied again."""
        payload = self.payloads[event.type].model_validate(event.payload)
        for _ in range(ATTEMPTS):
            try:
                return await self.apply(payload, event)
            except ConcurrencyError:
                continue
        raise ConcurrencyError(event.event_id)


@dataclass(frozen=True)
class Chore:
    """Work a worker does on its own every ``every(settings)`` seconds (each replica does it; it must
    be idempotent); with ``last``, once more when the process stops, after what it queued for
    publishing went out."""

    every: Callable[[Settings], float]
    run: Callable[[Runtime], Awaitable[None]]
    last: bool = False


@dataclass
class Replica(Generic[S]):
    """A mirror's state in one process, and when its last successful load began (epoch seconds)."""

    state: S
    loaded_at: float | None = None


@dataclass(frozen=True, eq=False)
class Mirror(Generic[S]):
    """A read model every replica of a worker keeps in its memory, so a hot path reads no database.

    Its state (an ``S``, e.g. a dict by user id) is kept in each process under ``replica``
    (``Runtime.kept``). ``apply(payload, event, state)`` merges one event into it; ``load(since)``
    reads from the worker's own durable documents (those a projection keeps, so replay rebuilds them
    too) the state stored at or after ``since`` (epoch seconds), or all of it when ``since`` is None;
    ``merge(state, loaded)`` merges a loaded state into the current one. Both must merge by version
    and never go back, so an event applied twice, late, or while a load was under way changes nothing
    it should not; both are synchronous, so nothing runs in the middle of one.

    Each process loads it whole before its subscribers start, then takes its event types from a
    queue of its own on the events exchange (``Names.mirror_queue``: every replica gets every event),
    and every ``BOOCHAT_MIRROR_RELOAD_SECONDS`` (10 s by default) loads and merges what was stored
    since shortly before its previous load (``reload``): that covers what it missed while
    disconnected from the broker, or between its first load and its queue, and costs what changed,
    not every user.
    """

    apply: Callable[[Any, AnyEvent, S], None]
    payloads: Mapping[str, type[Shape]]
    load: Callable[[float | None], Awaitable[S]]
    merge: Callable[[S, S], None]
    replica: Kept[Replica[S]]

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.payloads)

    def state(self, runtime: Runtime) -> S:
        """This process's state of the mirror (empty before its first load)."""
        return runtime.kept(self.replica).state

    async def reload(self, runtime: Runtime) -> None:
        """Merge what ``load`` finds into this process's state, in place (handlers holding it see
        the merge). The first load reads the whole state; each later one what was stored since
        ``RELOAD_OVERLAP`` before the previous successful one began, so a write that lands late, or
        by a process whose clock is behind, is still read (reading something twice changes nothing)."""
        replica = runtime.kept(self.replica)
        started = time.time()
        loaded = await self.load(None if replica.loaded_at is None else replica.loaded_at - RELOAD_OVERLAP)
        self.merge(replica.state, loaded)
        replica.loaded_at = started

    def reflect(self, runtime: Runtime, event: AnyEvent) -> None:
        """Apply ``event`` to this process's state (loaded first by ``reload``)."""
        self.apply(self.payloads[event.type].model_validate(event.payload), event, self.state(runtime))


@dataclass
class Worker:
    name: str
    commands: dict[str, CommandHandler]
    reactions: dict[str, Reaction] = field(default_factory=dict)
    documents: list[type[Document]] = field(default_factory=list)
    projections: dict[str, Projection] = field(default_factory=dict)
    chores: dict[str, Chore] = field(default_factory=dict)
    # The workers that keep a copy of this one's data, each by the command that hands a change over
    # to it (the follower's own, data ``HandOver``), with the event types it copies: a command that
    # commits such an event hands it over and answers ok only once every follower has applied it
    # (``Runtime.hand_over``). Only rare commands (membership changes) may produce these events.
    followers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mirrors: dict[str, Mirror[Any]] = field(default_factory=dict)

    def interests(self) -> dict[str, tuple[str, ...]]:
        """Every queue of events this worker's replicas share, by name, with the event types it takes
        (a mirror's queues belong to one process each: not here)."""
        return {name: r.types for name, r in (self.reactions | self.projections).items()}


# Stores a refusal's reply under a command's key (at ``now``); returns the reply that stands for the
# key: that one, or the first copy's outcome when one was stored first within the idempotency window.
Remember = Callable[[str, dict[str, Any], datetime], Awaitable[dict[str, Any]]]


def self_claiming(remember: Remember) -> Callable[[CommandHandler], CommandHandler]:
    """Mark a command handler whose one write claims the command's key itself (a unique key derived
    from it), so the runtime neither claims it first nor looks it up: the hot path's one write does
    both. ``remember(key, reply)`` stores a refusal under that same key; the handler, finding the key
    taken, answers what is stored there."""

    def mark(handler: CommandHandler) -> CommandHandler:
        handler.remember = remember  # type: ignore[attr-defined]  # a mark on the function, read by remembers_itself
        return handler

    return mark


def remembers_itself(handler: CommandHandler) -> Remember | None:
    return getattr(handler, "remember", None)


def typed(payload: type[Shape], *types: str) -> dict[str, type[Shape]]:
    """The ``payloads`` of a reaction, projection or mirror taking ``types``, all with one payload model."""
    return dict.fromkeys(types, payload)
