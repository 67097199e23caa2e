"""Running a worker's tables: a command once per idempotency key (with its hand-over to the
followers), a reaction to an event, and events another worker hands over (``apply_now``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError

from contracts.envelope import AnyEvent, Command, Failure, Reply
from contracts.errors import ErrorCode, Rejected, details
from contracts.internal import INTERNAL
from contracts.requests import REQUESTS, Spec
from workers.runtime.context import ATTEMPTS, Context, Runtime
from workers.runtime.outbox import Caller, Carried, Cause
from workers.runtime.store import (
    IDEMPOTENCY_WINDOW,
    ConcurrencyError,
    StoredEvent,
    abandon,
    claim,
    kept_fresh,
    settle,
)
from workers.runtime.tables import CommandHandler, Projection, Reaction, Worker, remembers_itself


def spec_of(type: str) -> Spec | None:
    return REQUESTS.get(type) or INTERNAL.get(type)


def failure(code: ErrorCode, message: str, details: dict[str, str] | None = None) -> Reply:
    return Reply(error=Failure(code=code, message=message, details=details))


@dataclass(frozen=True)
class Answer:
    """A command's outcome: its reply, and whether that reply already rides on a delivery the command
    caused (the handler returned ``Carried``), so the caller must not be sent it again."""

    reply: Reply
    carried: bool = False


async def run_command(worker: Worker, runtime: Runtime, command: Command, caller: Caller | None = None) -> Answer:
    """Decide ``command``; a command (not a query) acts once per key, every copy gets its outcome.
    A handler may send the reply to ``caller`` itself, riding on a delivery (``Carried``)."""
    spec = spec_of(command.type)
    handler = worker.commands.get(command.type)
    if spec is None or handler is None:
        return Answer(failure("bad_request", f"{worker.name} does not handle {command.type}"))
    if not spec.command:
        return await _decide(handler, spec, runtime, command, caller)
    if (remember := remembers_itself(handler)) is not None:  # its own write claims the key
        answer = await _decide(handler, spec, runtime, command, caller)
        if answer.reply.error is not None and answer.reply.remembered:
            # A copy with other data than the first is refused before its write: the first outcome stands.
            refusal = answer.reply.model_dump(mode="json")
            return Answer(Reply.model_validate(await remember(command.key, refusal, runtime.now())))
        return answer
    stale_after = runtime.settings.request_timeout_seconds
    claimed = await claim(command.key, stale_after)
    if not claimed.ours:
        return Answer(Reply.model_validate(claimed.reply))
    try:
        async with kept_fresh(command.key, claimed, stale_after):  # a slow copy is not taken over
            # An earlier copy may have committed without remembering its reply: it crashed or raised
            # (its claim was taken over), or a follower did not apply what it committed (it
            # released the claim).
            earlier = None
            if claimed.taken_over or runtime.followers:
                earlier = await _finish(runtime, command, relay=claimed.taken_over)
            answer = Answer(earlier) if earlier else await _decide(handler, spec, runtime, command, caller)
    except BaseException:
        # It may have raised after its commit: a retry must answer what was committed, not decide
        # again (which could refuse what succeeded, or act twice), so it takes over as from a crash.
        await abandon(command.key)
        raise
    await settle(command.key, answer.reply.model_dump(mode="json") if answer.reply.remembered else None)
    return answer


async def _finish(runtime: Runtime, command: Command, relay: bool) -> Reply | None:
    """The reply of an earlier copy of ``command`` that committed, once what it committed is handed
    over to the followers (that copy may not have done it): ``unavailable`` while a follower cannot
    apply it; None when no copy committed, or it left no reply (the handler decides again).

    With ``relay``, the earlier copy crashed: its events may still be in an aggregate's outbox, so
    the relay stores them first. A copy that released its claim stored them before its hand-over."""
    if relay:
        await runtime.outbox.relay_once(older_than=timedelta(0))
    # Within the idempotency window only: after it, the key is forgotten and the id is a new command's.
    since = runtime.now() - IDEMPOTENCY_WINDOW
    committed = await StoredEvent.find(
        StoredEvent.command_key == command.key, StoredEvent.occurred_at >= since
    ).to_list()
    if not committed:
        return None
    committed.sort(key=lambda stored: (stored.occurred_at, stored.aggregate_id, stored.version))
    try:
        events = [stored.entry().event() for stored in committed]
        await runtime.hand_over(events, Cause(command.user_id, command.id, command.id))
    except Rejected as error:
        return failure(error.code, error.message, error.details)
    reply = next((e.reply for e in committed if e.reply is not None), None)  # a commit's first event has it
    return Reply(ok=reply) if reply is not None else None


async def _decide(
    handler: CommandHandler, spec: Spec, runtime: Runtime, command: Command, caller: Caller | None
) -> Answer:
    try:
        data = spec.data.model_validate(command.data)
    except ValidationError as error:
        return Answer(failure("bad_request", "invalid data", details(error)))
    cause = Cause(command.user_id, command.id, command.id, command.key if spec.command else None)
    context = Context(runtime, cause, command.user_id, caller=caller)
    for _ in range(ATTEMPTS):
        try:
            result = await handler(data, context)
        except ConcurrencyError:
            continue
        except Rejected as error:
            return Answer(failure(error.code, error.message, error.details))
        if isinstance(result, Carried):
            return Answer(Reply.of(result.result), carried=True)
        return Answer(Reply.of(result))
    return Answer(failure("unavailable", "too much contention; retry with the same id"))


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


async def apply_now(runtime: Runtime, events: list[AnyEvent], *readers: Projection | Reaction) -> None:
    """Apply events another worker hands over (``Runtime.hand_over``) with this worker's projections
    and reactions ``readers``, in this order, as their queues do: when the hand-over's reply leaves,
    this worker's copy says what the sender's reply promises. Their queues bring the same events
    too, earlier or later: applying one twice changes nothing."""
    for event in events:
        for reader in readers:
            if event.type not in reader.payloads:
                continue
            if isinstance(reader, Projection):
                await reader.run(event)
            else:
                await run_reaction(reader, runtime, event)
