"""The composition every worker shares: a FastStream app whose subscribers run the command and
reaction tables of the worker's ``handlers.py``, with idempotency, retries and error replies."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import structlog
from beanie import Document, init_beanie
from faststream import FastStream
from faststream.middlewares import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.schemas import Channel
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from pymongo import AsyncMongoClient

from boochat import topology
from boochat.health import HealthServer, rabbit_metrics
from boochat.logs import configure
from boochat.rpc import RpcClient
from boochat.settings import Settings
from contracts.envelope import AnyEvent, Command, Fact, Failure, Reply
from contracts.errors import Rejected, details
from contracts.internal import INTERNAL, ResolveUsers, Users
from contracts.requests import REQUESTS, Spec
from contracts.routing import Names
from contracts.shapes import User
from workers.runtime.outbox import Cause, Outbox, envelope, stamp
from workers.runtime.store import (
    RUNTIME_DOCUMENTS,
    Aggregate,
    AppliedEvent,
    ConcurrencyError,
    ProcessedCommand,
    StoredEvent,
    write,
)

log = structlog.get_logger()

ATTEMPTS = 20  # optimistic-concurrency retries before giving up
# On SIGTERM, in-flight messages get this long to finish (unfinished ones are not acknowledged, so
# RabbitMQ redelivers them); an orchestrator's stop grace must be longer (compose: stop_grace_period).
GRACEFUL_TIMEOUT_SECONDS = 10.0
PING_TIMEOUT = 1.0  # seconds /readyz waits for the broker and for MongoDB


class Runtime:
    """The ports a handler may use, built once per process by ``create``."""

    def __init__(
        self, settings: Settings, outbox: Outbox, rpc: RpcClient | None, projections: Iterable[Projection] = ()
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.rpc = rpc
        self.projections = tuple(projections)
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def project(self, entries: list[dict[str, Any]]) -> None:
        """Apply the worker's projections to events it just committed (read-your-writes)."""
        for entry in entries:
            for projection in self.projections:
                if entry["type"] in projection.types:
                    await project(projection, AnyEvent.model_validate(envelope(entry)))

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
    """One command or reaction being handled."""

    runtime: Runtime
    cause: Cause
    user_id: str | None = None

    def now(self) -> datetime:
        return self.runtime.now()

    def lock(self, key: str) -> asyncio.Lock:
        return self.runtime.lock(key)

    async def commit(self, doc: Aggregate, facts: list[Fact], reply: BaseModel | None = None) -> None:
        """Write ``doc`` with ``facts`` as its next events, then publish them."""
        now = self.now()
        entries = [
            stamp(fact, doc.version + i + 1, self.cause, now, reply if i == 0 else None) for i, fact in enumerate(facts)
        ]
        await write(doc, entries)
        # Everything still in the outbox, in version order: an earlier writer (another replica) may
        # not have published its events yet, and publishing after it would swap the room's order.
        await self.runtime.outbox.flush(doc, sorted(doc.outbox, key=lambda e: e["version"]))
        await self.runtime.project(entries)

    async def ask(self, worker: str, type: str, data: BaseModel) -> dict[str, Any]:
        """A request to another worker, on behalf of this context's user; its refusal is re-raised."""
        assert self.runtime.rpc is not None
        command = Command(
            type=type,
            id=self.cause.correlation_id or "-",
            user_id=self.user_id or "-",
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
    """Another worker's refusal, passed on as it came."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message, failure.details)
        self.code = failure.code


CommandHandler = Callable[[Any, Context], Awaitable[BaseModel]]
ReactionHandler = Callable[[AnyEvent, Context], Awaitable[None]]


@dataclass(frozen=True)
class Reaction:
    """A worker's reaction to other events: its own queue, bound to ``types``."""

    types: tuple[str, ...]
    handle: ReactionHandler


@dataclass(frozen=True)
class Projection:
    """A read model kept from events (the worker's own or others'): ``apply`` is idempotent and
    tolerates any order, and publishes nothing.

    Live, it runs from its own queue bound to ``types``, and also right after a commit for the
    worker's own events, so what a reply says is readable at once. ``boochat replay`` drops
    ``documents`` and applies it to the whole event log.
    """

    types: tuple[str, ...]
    apply: Callable[[AnyEvent], Awaitable[None]]
    documents: tuple[type[Document], ...]


@dataclass(frozen=True)
class Chore:
    """Work a worker does on its own every ``every(settings)`` seconds (each replica does it; it must
    be idempotent)."""

    every: Callable[[Settings], float]
    run: Callable[[Runtime], Awaitable[None]]


@dataclass
class Worker:
    name: str
    commands: dict[str, CommandHandler]
    reactions: dict[str, Reaction] = field(default_factory=dict)
    documents: list[type[Document]] = field(default_factory=list)
    projections: dict[str, Projection] = field(default_factory=dict)
    chores: dict[str, Chore] = field(default_factory=dict)

    def interests(self) -> dict[str, tuple[str, ...]]:
        """Every queue of events this worker consumes, by name, with the event types it takes."""
        return {name: r.types for name, r in (self.reactions | self.projections).items()}


def spec_of(type: str) -> Spec | None:
    return REQUESTS.get(type) or INTERNAL.get(type)


def failure(code: str, message: str, details: dict[str, str] | None = None) -> Reply:
    return Reply(error=Failure(code=code, message=message, details=details))  # type: ignore[arg-type]


async def run_command(worker: Worker, runtime: Runtime, command: Command) -> Reply:
    spec = spec_of(command.type)
    handler = worker.commands.get(command.type)
    if spec is None or handler is None:
        return failure("bad_request", f"{worker.name} does not handle {command.type}")
    if spec.command:
        if (done := await ProcessedCommand.get(command.key)) is not None:
            return Reply.model_validate(done.reply)
        if (stored := await StoredEvent.find_one(StoredEvent.command_key == command.key)) is not None:
            return Reply(ok=stored.reply)
    reply = await _decide(handler, spec, runtime, command)
    if spec.command and reply.remembered:
        await ProcessedCommand(id=command.key, reply=reply.model_dump(mode="json")).save()
    return reply


async def _decide(handler: CommandHandler, spec: Spec, runtime: Runtime, command: Command) -> Reply:
    try:
        data = spec.data.model_validate(command.data)
    except ValidationError as error:
        return failure("bad_request", "invalid data", details(error))
    cause = Cause(command.user_id, command.id, command.id, command.key if spec.command else None)
    context = Context(runtime, cause, command.user_id)
    for _ in range(ATTEMPTS):
        try:
            result = await handler(data, context)
            return Reply(ok=result.model_dump(mode="json"))
        except ConcurrencyError:
            continue
        except Rejected as error:
            return failure(error.code, error.message, error.details)
    return failure("unavailable", "too much contention; retry with the same id")


async def run_reaction(name: str, reaction: Reaction, runtime: Runtime, event: AnyEvent) -> None:
    key = f"{name}:{event.event_id}"
    if await AppliedEvent.get(key) is not None:
        return
    context = Context(runtime, Cause(event.actor_id, event.correlation_id, event.event_id), event.actor_id)
    for _ in range(ATTEMPTS):
        try:
            await reaction.handle(event, context)
            break
        except ConcurrencyError:
            continue
    else:
        raise ConcurrencyError(key)  # nacked: redelivered later, then dead-lettered
    await AppliedEvent(id=key).save()


def _subscriber(name: str, reaction: Reaction, runtime: Runtime) -> Callable[[AnyEvent], Awaitable[None]]:
    async def react(event: AnyEvent) -> None:
        structlog.contextvars.bind_contextvars(request_id=event.correlation_id, event=event.type)
        await run_reaction(name, reaction, runtime, event)

    react.__name__ = name  # FastStream names the subscriber (and its AsyncAPI entry) after it
    return react


async def project(projection: Projection, event: AnyEvent) -> None:
    """Apply ``event``; a projection may raise ``ConcurrencyError`` to be applied again."""
    for _ in range(ATTEMPTS):
        try:
            return await projection.apply(event)
        except ConcurrencyError:
            continue
    raise ConcurrencyError(event.event_id)


async def _repeat(name: str, chore: Chore, runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(chore.every(runtime.settings))
        try:
            await chore.run(runtime)
        except Exception:  # try again next time
            log.exception("chore failed", chore=name)


def _projector(name: str, projection: Projection) -> Callable[[AnyEvent], Awaitable[None]]:
    async def apply(event: AnyEvent) -> None:
        structlog.contextvars.bind_contextvars(request_id=event.correlation_id, event=event.type)
        await project(projection, event)

    apply.__name__ = name
    return apply


def create(worker: Worker, settings: Settings) -> FastStream:
    """The FastStream app of ``worker``: topology, storage, subscribers, relay and RPC."""
    configure(worker.name, settings.log_level)
    names = settings.names
    registry = CollectorRegistry()
    broker = RabbitBroker(
        settings.amqp_url,
        default_channel=Channel(prefetch_count=settings.prefetch),
        graceful_timeout=GRACEFUL_TIMEOUT_SECONDS,
        middlewares=[rabbit_metrics(registry, worker.name, names.deliveries)],
        # FastStream's own lines as JSON like ours; its per-message lines only at debug level
        # ("command handled" says the same, with the request id).
        logger=structlog.get_logger("faststream"),
        log_level=logging.DEBUG,
    )
    aggregates = [d for d in worker.documents if issubclass(d, Aggregate)]
    outbox = Outbox(broker, names, aggregates)
    runtime = Runtime(settings, outbox, None, worker.projections.values())
    spec = AsyncAPI(title=f"Boochat {worker.name} worker", description=_describe(worker, names))
    app = FastStream(broker, specification=spec, logger=structlog.get_logger("faststream"))
    background: list[asyncio.Task[None]] = []
    connections: list[aio_pika.abc.AbstractRobustConnection] = []
    mongo: list[AsyncMongoClient[Any]] = []

    async def readiness() -> str | None:
        if not await broker.ping(PING_TIMEOUT):  # a bool: it never raises
            return "broker not connected"
        if not mongo:
            return "storage not initialised"
        try:
            await asyncio.wait_for(mongo[0].admin.command("ping"), PING_TIMEOUT)
        except Exception as error:
            return f"mongodb not answering: {error!r}"
        if not all(subscriber.running for subscriber in broker.subscribers):
            return "subscribers not running"
        return None

    health = HealthServer(settings.metrics_host, settings.metrics_port, registry, readiness, worker.name)

    @broker.subscriber(RabbitQueue(names.command_queue(worker.name), declare=False), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def commands(command: Command) -> dict[str, Any]:
        structlog.contextvars.bind_contextvars(request_id=command.id, type=command.type)
        try:
            reply = await run_command(worker, runtime, command)
        except Exception:
            log.exception("command failed")
            reply = failure("internal", "internal error")
        log.info("command handled", outcome=reply.error.code if reply.error else "ok")
        return reply.model_dump(mode="json", exclude_none=True)

    for name, reaction in worker.reactions.items():
        queue = RabbitQueue(names.reaction_queue(worker.name, name), declare=False)
        broker.subscriber(queue, ack_policy=AckPolicy.NACK_ON_ERROR, no_reply=True)(
            _subscriber(name, reaction, runtime)
        )
    for name, projection in worker.projections.items():
        queue = RabbitQueue(names.reaction_queue(worker.name, name), declare=False)
        broker.subscriber(queue, ack_policy=AckPolicy.NACK_ON_ERROR, no_reply=True)(_projector(name, projection))

    if settings.metrics_port:
        # First in, last out: /healthz answers while the rest starts and stops.
        app.on_startup(health.start)
        app.after_shutdown(health.stop)

    @app.on_startup
    async def prepare() -> None:
        client: AsyncMongoClient[Any] = AsyncMongoClient(settings.require_mongo_url(), tz_aware=True)
        mongo.append(client)
        await init_beanie(
            database=client[names.database(worker.name)],
            document_models=[*RUNTIME_DOCUMENTS, *worker.documents],
        )
        connection = await aio_pika.connect_robust(settings.amqp_url)
        connections.append(connection)
        runtime.connection = connection
        channel = await connection.channel(on_return_raises=True)
        await topology.declare_exchanges(channel, settings)
        await topology.declare_work_queue(
            channel, names, names.command_queue(worker.name), names.commands, [worker.name]
        )
        for name, types in worker.interests().items():
            await topology.declare_work_queue(
                channel, names, names.reaction_queue(worker.name, name), names.events, types
            )
        runtime.rpc = RpcClient(channel, names, settings.request_timeout_seconds)
        await runtime.rpc.start()

    @app.after_startup
    async def relay() -> None:
        await outbox.relay_once(older_than=RELAY_AT_START)
        background.append(asyncio.create_task(outbox.relay_forever()))
        for name, chore in worker.chores.items():
            background.append(asyncio.create_task(_repeat(name, chore, runtime)))
        log.info("worker ready", worker=worker.name)

    @app.on_shutdown
    async def stop_relay() -> None:
        for task in background:
            task.cancel()

    # After the broker has stopped: in-flight commands may still ask other workers until then.
    @app.after_shutdown
    async def disconnect() -> None:
        for connection in connections:
            await connection.close()

    return app


def _describe(worker: Worker, names: Names) -> str:
    """The AsyncAPI description: what the queues' bindings (declared by ``topology``) route to them."""
    lines = [
        f"Commands on `{names.command_queue(worker.name)}` (exchange `{names.commands}`, key "
        f"`{worker.name}`): {', '.join(f'`{c}`' for c in sorted(worker.commands))}. Each gets a reply.",
    ]
    for name, reaction_types in worker.interests().items():
        kind = "Projection" if name in worker.projections else "Reaction"
        types = ", ".join(f"`{t}`" for t in reaction_types)
        lines.append(f"{kind} `{name}` on `{names.reaction_queue(worker.name, name)}`: events {types}.")
    lines.append(f"Publishes its events on `{names.events}` and client deliveries on `{names.deliveries}`.")
    return "\n\n".join(lines)


RELAY_AT_START = timedelta(0)  # at start-up, whatever is in an outbox was left behind
