"""What a worker process consumes: its command queue, its reactions' and projections' queues, and
its mirrors' queues, each run by the tables of the worker's ``handlers.py`` (see ``dispatch``).

Commands come on a channel of their own, so a backlog of events never holds up a command. A failing
reaction or projection is tried again later, then parked (``retry``), never in the way.

A mirror's queue belongs to one process (``Names.mirror_queue``, a fresh id per process): classic,
auto-delete and expiring (``x-expires``), declared by FastStream, so its robust reconnect declares it
again. Durable only because RabbitMQ 4 refuses transient queues that are not exclusive, and an
exclusive one could not be declared again on a new connection while the broker still holds the old
one. ``boochat.topology`` does not list these queues: RabbitMQ deletes each one as its process stops
consuming it, and an orphan after ``MIRROR_QUEUE_EXPIRES_MS`` unused.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from faststream.middlewares import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue, RabbitRouter
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.schemas import Channel
from faststream.rabbit.schemas.queue import ClassicQueueArgs

from contracts.envelope import AnyEvent, Command
from contracts.routing import REPLY_KEY
from workers.runtime import retry
from workers.runtime.context import Runtime
from workers.runtime.dispatch import Answer, failure, run_command, run_reaction
from workers.runtime.outbox import Caller
from workers.runtime.tables import Mirror, Projection, Reaction, Worker

log = structlog.get_logger()

MIRROR_QUEUE_EXPIRES_MS = 60_000  # a mirror's queue that nobody consumes or declares goes after this


def subscribe(broker: RabbitBroker, worker: Worker, runtime: Runtime) -> None:
    """Every subscriber of ``worker`` on ``broker``.

    The commands' router is included last: FastStream starts the broker's own subscribers, then each
    router's in the order included, so a worker that consumes its command queue (what
    ``wait_stack_ready`` waits for) already runs every reaction, projection and mirror, and its
    /readyz says so.
    """
    settings, names = runtime.settings, runtime.settings.names
    for name, reaction in worker.reactions.items():
        retry.subscriber(broker, settings, names.reaction_queue(worker.name, name))(_reactor(name, reaction, runtime))
    for name, projection in worker.projections.items():
        retry.subscriber(broker, settings, names.reaction_queue(worker.name, name))(_projector(name, projection))
    process_id = uuid.uuid4().hex[:12]
    for name, mirror in worker.mirrors.items():
        queue = names.mirror_queue(worker.name, name, process_id)
        _subscribe_mirror(broker, names.events, queue, mirror.types, _reflector(name, mirror, runtime))
    broker.include_router(_commands(broker, worker, runtime))


def _commands(broker: RabbitBroker, worker: Worker, runtime: Runtime) -> RabbitRouter:
    """The command queue's subscriber. The reply goes out here, not by FastStream: on its own, unless
    the handler sent it riding on a delivery the command caused (``Answer.carried``), which saves a
    broker message per send."""
    router = RabbitRouter()
    outbox = runtime.outbox

    @router.subscriber(
        RabbitQueue(runtime.settings.names.command_queue(worker.name), declare=False),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=Channel(prefetch_count=runtime.settings.prefetch),
        no_reply=True,
    )
    async def commands(command: Command) -> None:
        structlog.contextvars.bind_contextvars(request_id=command.id, type=command.type)
        # Read from FastStream's context, not taken as a ``RabbitMessage`` argument: fast_depends
        # resolves that in a worker thread, which cost 6 % of messaging's CPU per send.
        message: RabbitMessage = broker.context.get_local("message")
        caller = Caller(message.reply_to, message.correlation_id, message.headers.get(REPLY_KEY))
        try:
            answer = await run_command(worker, runtime, command, caller)
        except Exception:
            log.exception("command failed")
            answer = Answer(failure("internal", "internal error"))
        # Each one at info would be a line per message: FastStream's metrics count them instead.
        if answer.reply.error is None:
            log.debug("command handled", outcome="ok")
        else:
            log.info("command handled", outcome=answer.reply.error.code)
        if caller.reply_to and not answer.carried:
            await outbox.reply(caller, answer.reply)

    return router


def _reactor(name: str, reaction: Reaction, runtime: Runtime) -> Callable[[AnyEvent], Awaitable[None]]:
    async def react(event: AnyEvent) -> None:
        structlog.contextvars.bind_contextvars(request_id=event.correlation_id, event=event.type)
        await run_reaction(reaction, runtime, event)

    react.__name__ = name  # FastStream names the subscriber (and its AsyncAPI entry) after it
    return react


def _projector(name: str, projection: Projection) -> Callable[[AnyEvent], Awaitable[None]]:
    async def apply(event: AnyEvent) -> None:
        structlog.contextvars.bind_contextvars(request_id=event.correlation_id, event=event.type)
        await projection.run(event)

    apply.__name__ = name
    return apply


def _reflector(name: str, mirror: Mirror[Any], runtime: Runtime) -> Callable[[AnyEvent], Awaitable[None]]:
    async def apply(event: AnyEvent) -> None:
        mirror.reflect(runtime, event)

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
    arguments: ClassicQueueArgs = {"x-expires": MIRROR_QUEUE_EXPIRES_MS}
    for event_type in types:
        broker.subscriber(
            RabbitQueue(queue, durable=True, auto_delete=True, arguments=arguments, routing_key=event_type),
            events,
            ack_policy=AckPolicy.REJECT_ON_ERROR,  # a failure is dropped: the next reload repairs the state
            no_reply=True,
            include_in_schema=False,  # its name changes with every process: ``_describe`` says it
        )(apply)
