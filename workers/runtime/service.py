"""The composition every worker shares: a FastStream app whose subscribers run the command,
reaction, projection and mirror tables of the worker's ``handlers.py`` (see ``dispatch``), its
storage, relay, chores, health and metrics.

A mirror's queue belongs to one process (``Names.mirror_queue``, a fresh id per process): classic,
auto-delete and expiring (``x-expires``), declared by FastStream, so its robust reconnect declares it
again. Durable only because RabbitMQ 4 refuses transient queues that are not exclusive, and an
exclusive one could not be declared again on a new connection while the broker still holds the old
one. ``boochat.topology`` does not list these queues: RabbitMQ deletes each one as its process stops
consuming it, and an orphan after ``MIRROR_QUEUE_EXPIRES_MS`` unused.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

import aio_pika
import structlog
from beanie import init_beanie
from faststream import FastStream
from faststream.middlewares import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue, RabbitRouter
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.schemas import Channel
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from boochat import topology
from boochat.health import HealthServer, rabbit_metrics
from boochat.logs import configure
from boochat.rpc import RpcClient
from boochat.settings import Settings
from contracts.envelope import AnyEvent, Command
from contracts.routing import REPLY_KEY, Names
from workers.runtime import retry
from workers.runtime.context import Runtime, project, reflect, reload
from workers.runtime.dispatch import failure, run_command, run_reaction
from workers.runtime.outbox import Caller, Outbox
from workers.runtime.store import RUNTIME_DOCUMENTS, Aggregate
from workers.runtime.tables import Chore, Mirror, Projection, Reaction, Worker

log = structlog.get_logger()

# On SIGTERM, in-flight messages get this long to finish (unfinished ones are not acknowledged, so
# RabbitMQ redelivers them); an orchestrator's stop grace must be longer (compose: stop_grace_period).
GRACEFUL_TIMEOUT_SECONDS = 10.0
PING_TIMEOUT = 1.0  # seconds /readyz waits for the broker and for MongoDB
MIRROR_QUEUE_EXPIRES_MS = 60_000  # a mirror's queue that nobody consumes or declares goes after this


def _reactor(name: str, reaction: Reaction, runtime: Runtime) -> Callable[[AnyEvent], Awaitable[None]]:
    async def react(event: AnyEvent) -> None:
        structlog.contextvars.bind_contextvars(request_id=event.correlation_id, event=event.type)
        await run_reaction(reaction, runtime, event)

    react.__name__ = name  # FastStream names the subscriber (and its AsyncAPI entry) after it
    return react


def _projector(name: str, projection: Projection) -> Callable[[AnyEvent], Awaitable[None]]:
    async def apply(event: AnyEvent) -> None:
        structlog.contextvars.bind_contextvars(request_id=event.correlation_id, event=event.type)
        await project(projection, event)

    apply.__name__ = name
    return apply


def _reflector(name: str, mirror: Mirror, runtime: Runtime) -> Callable[[AnyEvent], Awaitable[None]]:
    async def apply(event: AnyEvent) -> None:
        reflect(runtime, name, mirror, event)

    apply.__name__ = f"mirror_{name}"
    return apply


def _subscribe_mirror(
    broker: RabbitBroker,
    exchange: str,
    queue: str,
    types: tuple[str, ...],
    apply: Callable[[AnyEvent], Awaitable[None]],
) -> None:
    """This process's queue of a mirror's events. A FastStream queue binds one routing key, so each
    event type gets a subscriber of its own on the one queue (declared alike, so declared once)."""
    events = RabbitExchange(exchange, type=ExchangeType.TOPIC, declare=False)  # topology declares it
    arguments = {"x-expires": MIRROR_QUEUE_EXPIRES_MS}
    for event_type in types:
        broker.subscriber(
            RabbitQueue(queue, durable=True, auto_delete=True, arguments=arguments, routing_key=event_type),
            events,
            ack_policy=AckPolicy.REJECT_ON_ERROR,  # a failure is dropped: the next reload repairs the state
            no_reply=True,
            include_in_schema=False,  # its name changes with every process: ``_describe`` says it
        )(apply)


async def _repeat(name: str, chore: Chore, runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(chore.every(runtime.settings))
        try:
            await chore.run(runtime)
        except Exception:  # try again next time
            log.exception("chore failed", chore=name)


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
        # FastStream's own lines as JSON like ours; its per-message lines only at debug level, like
        # "command handled" for a command that succeeded.
        logger=structlog.get_logger("faststream"),
        log_level=logging.DEBUG,
    )
    aggregates = [d for d in worker.documents if issubclass(d, Aggregate)]
    outbox = Outbox(broker, names, aggregates)
    runtime = Runtime(settings, outbox, None, worker.projections.values(), worker.followers)
    spec = AsyncAPI(title=f"Boochat {worker.name} worker", description=_describe(worker, names))
    app = FastStream(broker, specification=spec, logger=structlog.get_logger("faststream"))
    app.context.set_global("runtime", runtime)  # for operators' hooks and tests: what this process holds
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

    # Commands on a channel of their own: a backlog of events never holds up a command. Their router
    # is included last: FastStream starts the broker's own subscribers (mirrors), then each router's
    # in the order included, so a worker that consumes its command queue (what ``wait_stack_ready``
    # waits for) already runs every reaction, projection and mirror, and its /readyz says so.
    command_router = RabbitRouter()

    # The reply goes out here, not by FastStream: on its own, unless the handler sent it riding on a
    # delivery the command caused (``outbox.carry``), which saves a broker message per send.
    @command_router.subscriber(
        RabbitQueue(names.command_queue(worker.name), declare=False),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=Channel(prefetch_count=settings.prefetch),
        no_reply=True,
    )
    async def commands(command: Command) -> None:
        structlog.contextvars.bind_contextvars(request_id=command.id, type=command.type)
        # Read from FastStream's context, not taken as a ``RabbitMessage`` argument: fast_depends
        # resolves that in a worker thread, which cost 6 % of messaging's CPU per send.
        message: RabbitMessage = broker.context.get_local("message")
        caller = Caller(message.reply_to, message.correlation_id, message.headers.get(REPLY_KEY))
        try:
            reply = await run_command(worker, runtime, command, caller)
        except Exception:
            log.exception("command failed")
            reply = failure("internal", "internal error")
        # Each one at info would be a line per message: FastStream's metrics count them instead.
        if reply.error is None:
            log.debug("command handled", outcome="ok")
        else:
            log.info("command handled", outcome=reply.error.code)
        if caller.reply_to and not caller.carried:
            await outbox.reply(caller, reply)

    # A failing reaction or projection is tried again later, then parked (retry.py), never in the way.
    for name, reaction in worker.reactions.items():
        retry.subscriber(broker, settings, names.reaction_queue(worker.name, name))(_reactor(name, reaction, runtime))
    for name, projection in worker.projections.items():
        retry.subscriber(broker, settings, names.reaction_queue(worker.name, name))(_projector(name, projection))
    process_id = uuid.uuid4().hex[:12]
    for name, mirror in worker.mirrors.items():
        queue = names.mirror_queue(worker.name, name, process_id)
        _subscribe_mirror(broker, names.events, queue, mirror.types, _reflector(name, mirror, runtime))
    broker.include_router(command_router)

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
            queue = names.reaction_queue(worker.name, name)
            retired = topology.RETIRED_BINDINGS.get((worker.name, name), ())
            await topology.declare_work_queue(channel, names, queue, names.events, types, retired)
        await outbox.attach(await connection.channel(publisher_confirms=True))
        runtime.rpc = RpcClient(channel, names, settings.request_timeout_seconds)
        await runtime.rpc.start()
        for name, mirror in worker.mirrors.items():  # before any subscriber starts: none sees it empty
            await reload(runtime, name, mirror)

    @app.after_startup
    async def relay() -> None:
        await outbox.relay_once(older_than=RELAY_AT_START)
        background.append(asyncio.create_task(outbox.relay_forever()))
        for name, chore in worker.chores.items():
            background.append(asyncio.create_task(_repeat(name, chore, runtime)))
        for name, mirror in worker.mirrors.items():
            catch_up = Chore(lambda s: s.mirror_reload_seconds, partial(reload, name=name, mirror=mirror))
            background.append(asyncio.create_task(_repeat(f"reload_{name}", catch_up, runtime)))
        log.info("worker ready", worker=worker.name)

    @app.on_shutdown
    async def stop_relay() -> None:
        for task in background:
            task.cancel()

    # What handlers queued for publishing goes out before the broker closes (whatever a handler
    # still running queues after this, the relay republishes after a restart).
    @app.on_shutdown
    async def publish_queued() -> None:
        try:
            await asyncio.wait_for(outbox.drain(), GRACEFUL_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("queued events left to the relay")

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
    for name, mirror in worker.mirrors.items():
        types = ", ".join(f"`{t}`" for t in mirror.types)
        queue = names.mirror_queue(worker.name, name, "<process_id>")
        lines.append(f"Mirror `{name}` on `{queue}`, one queue per process (auto-delete): events {types}.")
    lines.append(f"Publishes its events on `{names.events}` and client deliveries on `{names.deliveries}`.")
    return "\n\n".join(lines)


RELAY_AT_START = timedelta(0)  # at start-up, whatever is in an outbox was left behind
