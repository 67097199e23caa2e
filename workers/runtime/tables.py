"""What a worker is: the tables its ``handlers.py`` fills in (commands, reactions, projections,
chores, mirrors) and the workers that keep a copy of its data (followers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from beanie import Document

from boochat.settings import Settings
from contracts.common import Shape
from contracts.envelope import AnyEvent

if TYPE_CHECKING:
    from workers.runtime.context import Context, Runtime

CommandHandler = Callable[[Any, "Context"], Awaitable[Shape]]


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


@dataclass(frozen=True)
class Chore:
    """Work a worker does on its own every ``every(settings)`` seconds (each replica does it; it must
    be idempotent)."""

    every: Callable[[Settings], float]
    run: Callable[[Runtime], Awaitable[None]]


@dataclass(frozen=True)
class Mirror:
    """A read model every replica of a worker keeps in its memory, so a hot path reads no database.

    Its state is a dict (by aggregate or user id) in ``Runtime.memory[<its name>]``.
    ``apply(payload, event, state)`` merges one event into it; ``load(since)`` reads from the
    worker's own durable documents (those a projection keeps, so replay rebuilds them too) the state
    stored at or after ``since`` (epoch seconds), or all of it when ``since`` is None;
    ``merge(state, loaded)`` merges a loaded state into the current one. Both must merge by version
    and never go back, so an event applied twice, late, or while a load was under way changes nothing
    it should not; both are synchronous, so nothing runs in the middle of one.

    Each process loads it whole before its subscribers start, then takes its event types from a
    queue of its own on the events exchange (``Names.mirror_queue``: every replica gets every event),
    and every ``BOOCHAT_MIRROR_RELOAD_SECONDS`` (10 s by default) loads and merges what was stored
    since shortly before its previous load (``context.reload``): that covers what it missed while
    disconnected from the broker, or between its first load and its queue, and costs what changed,
    not every user.
    """

    apply: Callable[[Any, AnyEvent, dict[str, Any]], None]
    payloads: Mapping[str, type[Shape]]
    load: Callable[[float | None], Awaitable[dict[str, Any]]]
    merge: Callable[[dict[str, Any], dict[str, Any]], None]

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.payloads)


@dataclass
class Worker:
    name: str
    commands: dict[str, CommandHandler]
    reactions: dict[str, Reaction] = field(default_factory=dict)
    documents: list[type[Document]] = field(default_factory=list)
    projections: dict[str, Projection] = field(default_factory=dict)
    chores: dict[str, Chore] = field(default_factory=dict)
    # Workers that keep a copy of this one's data, with the event types they copy: a command that
    # commits such an event hands it to them (``apply_events``) before it replies. Only rare
    # commands (membership changes) may produce these events.
    followers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mirrors: dict[str, Mirror] = field(default_factory=dict)

    def interests(self) -> dict[str, tuple[str, ...]]:
        """Every queue of events this worker's replicas share, by name, with the event types it takes
        (a mirror's queues belong to one process each: not here)."""
        return {name: r.types for name, r in (self.reactions | self.projections).items()}


Remember = Callable[[str, dict[str, Any]], Awaitable[None]]


def self_claiming(remember: Remember) -> Callable[[CommandHandler], CommandHandler]:
    """Mark a command handler whose one write claims the command's key itself (a unique key derived
    from it), so the runtime neither claims it first nor looks it up: the hot path's one write does
    both. ``remember(key, reply)`` stores a refusal under that same key; the handler, finding the key
    taken, answers what is stored there."""

    def mark(handler: CommandHandler) -> CommandHandler:
        handler.remember = remember  # type: ignore[attr-defined]
        return handler

    return mark


def remembers_itself(handler: CommandHandler) -> Remember | None:
    return getattr(handler, "remember", None)


def typed(payload: type[Shape], *types: str) -> dict[str, type[Shape]]:
    """The ``payloads`` of a reaction, projection or mirror taking ``types``, all with one payload model."""
    return dict.fromkeys(types, payload)
