"""Running a worker's tables: a command with its idempotency key, a reaction to an event, and
``apply_events`` (events a worker hands over before replying to a rare command)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from contracts.envelope import AnyEvent, Command, Failure, Reply
from contracts.errors import Rejected, details
from contracts.internal import INTERNAL, ApplyEvents
from contracts.requests import REQUESTS, Spec
from workers.runtime.context import ATTEMPTS, Context, Runtime, project
from workers.runtime.outbox import Caller, Cause
from workers.runtime.store import ConcurrencyError, StoredEvent, claim, settle
from workers.runtime.tables import CommandHandler, Reaction, Worker, remembers_itself


def spec_of(type: str) -> Spec | None:
    return REQUESTS.get(type) or INTERNAL.get(type)


def failure(code: str, message: str, details: dict[str, str] | None = None) -> Reply:
    return Reply(error=Failure(code=code, message=message, details=details))  # type: ignore[arg-type]


async def run_command(worker: Worker, runtime: Runtime, command: Command, caller: Caller | None = None) -> Reply:
    """Decide ``command``; a command (not a query) acts once per key, every copy gets its outcome.
    A handler may send the reply to ``caller`` itself, riding on a delivery (``caller.carried``)."""
    if command.type == "apply_events" and worker.reactions | worker.projections:
        return await _apply_events(worker, runtime, command)
    spec = spec_of(command.type)
    handler = worker.commands.get(command.type)
    if spec is None or handler is None:
        return failure("bad_request", f"{worker.name} does not handle {command.type}")
    if not spec.command:
        return await _decide(handler, spec, runtime, command, caller)
    if (remember := remembers_itself(handler)) is not None:  # its own write claims the key
        reply = await _decide(handler, spec, runtime, command, caller)
        if reply.error is not None and reply.remembered:
            await remember(command.key, reply.model_dump(mode="json"))
        return reply
    claimed = await claim(command.key, stale_after=runtime.settings.request_timeout_seconds)
    if not claimed.ours:
        return Reply.model_validate(claimed.reply)
    stored = await _committed_before(runtime, command) if claimed.taken_over else None
    if stored is not None:
        reply = Reply(ok=stored)
    else:
        try:
            reply = await _decide(handler, spec, runtime, command, caller)
        except BaseException:
            await settle(command.key, None)
            raise
    await settle(command.key, reply.model_dump(mode="json") if reply.remembered else None)
    return reply


async def _committed_before(runtime: Runtime, command: Command) -> dict[str, Any] | None:
    """The reply a crashed copy of ``command`` committed before it could remember it, if it did:
    its events are in the event store, or still in an aggregate's outbox (the relay stores them)."""
    await runtime.outbox.relay_once(older_than=timedelta(0))
    stored = await StoredEvent.find_one(StoredEvent.command_key == command.key)
    return stored.reply if stored is not None else None


async def _decide(
    handler: CommandHandler, spec: Spec, runtime: Runtime, command: Command, caller: Caller | None
) -> Reply:
    try:
        data = spec.data.model_validate(command.data)
    except ValidationError as error:
        return failure("bad_request", "invalid data", details(error))
    cause = Cause(command.user_id, command.id, command.id, command.key if spec.command else None)
    context = Context(runtime, cause, command.user_id, caller=caller)
    for _ in range(ATTEMPTS):
        try:
            result = await handler(data, context)
            return Reply.of(result)
        except ConcurrencyError:
            continue
        except Rejected as error:
            return failure(error.code, error.message, error.details)
    return failure("unavailable", "too much contention; retry with the same id")


async def run_reaction(reaction: Reaction, runtime: Runtime, event: AnyEvent) -> None:
    """Apply an idempotent reaction, again while it meets a concurrent writer."""
    payload = reaction.payloads[event.type].model_validate(event.payload)
    context = Context(runtime, Cause(event.actor_id, event.correlation_id, event.event_id), event.actor_id, event)
    for _ in range(ATTEMPTS):
        try:
            return await reaction.handle(payload, context)
        except ConcurrencyError:
            continue
    raise ConcurrencyError(event.event_id)  # nacked: redelivered later, then dead-lettered


async def _apply_events(worker: Worker, runtime: Runtime, command: Command) -> Reply:
    """Apply handed-over events as their queues would, projections first: when the reply leaves,
    this worker's copy already says what the sender's reply promises."""
    try:
        events = [AnyEvent.model_validate(e) for e in ApplyEvents.model_validate(command.data).events]
    except ValidationError as error:
        return failure("bad_request", "invalid events", details(error))
    for event in events:
        for projection in worker.projections.values():
            if event.type in projection.payloads:
                await project(projection, event)
        for reaction in worker.reactions.values():
            if event.type in reaction.payloads:
                await run_reaction(reaction, runtime, event)
    return Reply(ok={})
