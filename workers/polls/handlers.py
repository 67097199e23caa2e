"""Everything the polls worker consumes and answers: read these two tables to know its interface."""

from __future__ import annotations

import uuid

from contracts import internal, requests
from contracts.events import MemberLeft
from contracts.internal import MeetupAccessReply
from contracts.requests import Empty, PollReply
from workers.polls import domain, storage
from workers.polls.storage import PollDoc
from workers.runtime.context import Context
from workers.runtime.dispatch import apply_now
from workers.runtime.store import StateDocument
from workers.runtime.tables import CommandHandler, Reaction, typed


async def meetup_access(ctx: Context, meetup_id: str) -> MeetupAccessReply:
    """The meetup, if the user attends it (the meetups worker says forbidden or not_found otherwise)."""
    reply = await ctx.ask("meetups", "meetup_access", internal.MeetupAccess(meetup_id=meetup_id))
    return MeetupAccessReply.model_validate(reply)


async def poll(poll_id: str) -> tuple[StateDocument[domain.PollState], domain.PollState]:
    doc = await storage.load(poll_id)
    state = domain.existing(doc.state() if doc else None)
    assert doc is not None
    return doc, state


async def create_poll(data: requests.CreatePoll, ctx: Context) -> PollReply:
    assert ctx.user_id and ctx.cause.command_key
    # The id derives from the command, so a retried create_poll can only ever make one poll.
    poll_id = uuid.uuid5(uuid.NAMESPACE_URL, ctx.cause.command_key).hex
    if (doc := await storage.load(poll_id)) is not None:  # the same id, reused after 24 hours
        return PollReply(poll=doc.state().view())
    meetup = await meetup_access(ctx, data.meetup_id)
    creator = (await ctx.users([ctx.user_id]))[ctx.user_id]
    state, facts = domain.open_poll(poll_id, meetup, creator, data, ctx.now())
    reply = PollReply(poll=state.view())
    await ctx.commit(PollDoc.new(state), facts, reply)
    return reply


async def vote_poll(data: requests.VotePoll, ctx: Context) -> Empty:
    doc, state = await poll(data.poll_id)
    if domain.vote_needs_attendance(state):  # a closed poll: the request to meetups is on a rare path
        await meetup_access(ctx, state.meetup_id)
    facts = domain.vote(state, ctx.user_id or "", data.choice_index)
    await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def close_poll(data: requests.ClosePoll, ctx: Context) -> Empty:
    doc, state = await poll(data.poll_id)
    meetup = await meetup_access(ctx, state.meetup_id)
    facts = domain.close(state, ctx.user_id or "", meetup)
    await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def remove_leaver(payload: MemberLeft, ctx: Context) -> None:
    for doc in await storage.open_in_room(payload.room.id):
        state = doc.state()
        if facts := domain.remove_participant(state, payload.user_id):
            await ctx.commit(doc.with_state(state), facts)


async def remove_leavers(data: internal.HandOver, ctx: Context) -> Empty:
    """Rooms hands a leave over before it answers (its ``FOLLOWERS``): the leaver leaves open polls
    now, as ``remove_leaver`` does from its queue."""
    await apply_now(ctx.runtime, data.events, REACTIONS["remove_leaver"])
    return Empty()


COMMANDS: dict[str, CommandHandler] = {
    "create_poll": create_poll,
    "vote_poll": vote_poll,
    "close_poll": close_poll,
    "remove_leavers": remove_leavers,
}

REACTIONS = {
    "remove_leaver": Reaction(remove_leaver, typed(MemberLeft, "room.member_left")),
}
