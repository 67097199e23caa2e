"""Everything the meetups worker consumes and answers: read these tables to know its interface."""

from __future__ import annotations

import uuid

from contracts import internal, requests
from contracts.envelope import AnyEvent
from contracts.events import (
    MeetupCreated,
    MeetupMoved,
    MeetupUpdated,
    MemberJoined,
    MemberLeft,
    ParticipantRemoved,
    PollClosed,
    PollCreated,
    VoteCast,
)
from contracts.internal import MeetupAccessReply, OpenedRoom
from contracts.requests import Empty, MeetupList, MeetupReply
from workers.meetups import domain, storage
from workers.meetups.storage import MeetupDoc
from workers.runtime.context import Context
from workers.runtime.dispatch import apply_now
from workers.runtime.store import StateDocument
from workers.runtime.tables import CommandHandler, Projection, Reaction


async def attendee(ctx: Context, meetup_id: str) -> tuple[StateDocument[domain.MeetupState], domain.MeetupState]:
    doc = await storage.load(meetup_id)
    state = domain.readable(doc.state() if doc else None, ctx.user_id or "")
    assert doc is not None
    return doc, state


async def create_meetup(data: requests.CreateMeetup, ctx: Context) -> MeetupReply:
    assert ctx.user_id and ctx.cause.command_key
    # Ids derive from the command, so a retried create_meetup can only ever make one meetup and room.
    meetup_id = uuid.uuid5(uuid.NAMESPACE_URL, ctx.cause.command_key).hex
    if (doc := await storage.load(meetup_id)) is not None:  # the same id, reused after 24 hours
        return MeetupReply(meetup=doc.state().view(ctx.user_id))
    known = await ctx.users([ctx.user_id, *data.attendee_ids])
    invited = domain.invitees(ctx.user_id, data.attendee_ids, known)
    opened = internal.OpenMeetupRoom(
        room_id=uuid.uuid5(uuid.NAMESPACE_URL, meetup_id).hex,
        meetup_id=meetup_id,
        name=data.name,
        image_url=data.image_url,
        participant_ids=invited,
    )
    room = OpenedRoom.model_validate(await ctx.ask("rooms", "open_meetup_room", opened)).room
    state, facts = domain.open_meetup(meetup_id, room, known[ctx.user_id], data, ctx.now())
    reply = MeetupReply(meetup=state.view(ctx.user_id))
    await ctx.commit(MeetupDoc.new(state), facts, reply)
    return reply


async def change_rsvp(data: requests.ChangeRsvp, ctx: Context) -> Empty:
    doc, state = await attendee(ctx, data.meetup_id)
    if facts := domain.change_rsvp(state, ctx.user_id or "", data.rsvp):
        await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def change_meetup_image(data: requests.ChangeMeetupImage, ctx: Context) -> Empty:
    doc, state = await attendee(ctx, data.meetup_id)
    if facts := domain.change_image(state, ctx.user_id or "", data.image_url):
        await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def get_meetup(data: requests.GetMeetup, ctx: Context) -> MeetupReply:
    return MeetupReply(meetup=domain.seen_by(await storage.view(data.meetup_id), ctx.user_id or ""))


async def list_meetups(data: Empty, ctx: Context) -> MeetupList:
    user_id = ctx.user_id or ""
    return MeetupList(meetups=[domain.seen_by(m, user_id) for m in await storage.views_of(user_id)])


async def meetup_access(data: internal.MeetupAccess, ctx: Context) -> MeetupAccessReply:
    _, state = await attendee(ctx, data.meetup_id)
    return MeetupAccessReply(
        meetup_id=state.id,
        room_id=state.room_id,
        organizer_id=state.organizer_id,
        attendee_ids=state.attendee_ids,
    )


async def follow_room(payload: MemberJoined | MemberLeft, ctx: Context) -> None:
    assert ctx.event is not None
    if (doc := await storage.of_room(payload.room.id)) is None:  # not a meetup's room
        return
    state = doc.state()
    if (facts := domain.follow_room(state, payload.room, ctx.event.version)) is not None:
        await ctx.commit(doc.with_state(state), facts)


async def track_poll(payload: PollCreated | VoteCast | ParticipantRemoved | PollClosed, ctx: Context) -> None:
    assert ctx.event is not None
    if (doc := await storage.load(payload.poll.meetup_id)) is None:
        return
    state = doc.state()
    if (facts := domain.apply_poll(state, ctx.event.type, payload.poll, ctx.event.version)) is not None:
        await ctx.commit(doc.with_state(state), facts)


async def index_meetup(payload: MeetupCreated | MeetupUpdated | MeetupMoved, event: AnyEvent) -> None:
    """meetup.created, .updated and .moved all carry the whole meetup and its creation time."""
    await storage.put_view(payload.meetup, payload.created_at, event.version)


async def follow_membership(data: internal.HandOver, ctx: Context) -> Empty:
    """Rooms hands a membership change over before it answers (its ``FOLLOWERS``): attendees follow
    it now, as ``follow_room`` does from its queue."""
    await apply_now(ctx.runtime, data.events, REACTIONS["follow_room"])
    return Empty()


COMMANDS: dict[str, CommandHandler] = {
    "create_meetup": create_meetup,
    "change_rsvp": change_rsvp,
    "change_meetup_image": change_meetup_image,
    "get_meetup": get_meetup,
    "list_meetups": list_meetups,
    "meetup_access": meetup_access,
    "follow_membership": follow_membership,
}

REACTIONS = {
    "follow_room": Reaction(follow_room, {"room.member_joined": MemberJoined, "room.member_left": MemberLeft}),
    "track_poll": Reaction(
        track_poll,
        {
            "poll.created": PollCreated,
            "poll.vote_cast": VoteCast,
            "poll.participant_removed": ParticipantRemoved,
            "poll.closed": PollClosed,
        },
    ),
}

PROJECTIONS = {
    "index_meetups": Projection(
        index_meetup,
        {"meetup.created": MeetupCreated, "meetup.updated": MeetupUpdated, "meetup.moved": MeetupMoved},
        (storage.MeetupView,),
    ),
}
