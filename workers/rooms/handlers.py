"""Everything the rooms worker consumes and answers: read this table to know its interface.

Rooms owns who is in a room and what it is called. Its events reach messaging, which keeps a copy
of every room; a command that changes a room hands its events over to messaging (and membership
changes to meetups and polls), each by a command of theirs, and replies ok only once all have
applied them (``FOLLOWERS``), so a member who has left cannot read, post, vote or see the meetup
after the reply, and a new one can at once. What members see of a change (client events,
announcements) is messaging's.
"""

from __future__ import annotations

import uuid

from contracts import internal, requests
from contracts.internal import OpenedRoom, RoomIds
from contracts.requests import Empty, RoomReply
from contracts.shapes import Room
from workers.rooms import domain, storage
from workers.rooms.domain import RoomState
from workers.rooms.storage import RoomDoc
from workers.runtime.context import Context
from workers.runtime.store import StateDocument
from workers.runtime.tables import CommandHandler

ROOM_EVENTS = ("room.created", "room.member_joined", "room.member_left", "room.updated")


async def participant(ctx: Context, room_id: str) -> tuple[StateDocument[RoomState], RoomState]:
    doc, state = await storage.load(room_id)
    state = domain.readable(state, ctx.user_id or "")
    assert doc is not None
    return doc, state


async def create_room(data: requests.CreateRoom, ctx: Context) -> RoomReply:
    assert ctx.user_id and ctx.cause.command_key
    # The id derives from the command, so a retried create_room can only ever make one room.
    room_id = uuid.uuid5(uuid.NAMESPACE_URL, ctx.cause.command_key).hex
    if (state := (await storage.load(room_id))[1]) is not None:  # the same id, reused after 24 hours:
        return RoomReply(room=new_room(domain.readable(state, ctx.user_id)))  # the room, to a member still
    known = await ctx.users([ctx.user_id, *data.participant_ids])
    state, facts = domain.open_room(
        room_id, known[ctx.user_id], data.name, data.image_url, data.participant_ids, known, ctx.now()
    )
    await allowed(ctx, rooms=1, invites=len(state.participant_ids) - 1)
    reply = RoomReply(room=new_room(state))
    await ctx.commit(RoomDoc.new(state), facts, reply)
    return reply


async def allowed(ctx: Context, rooms: int = 0, invites: int = 0) -> None:
    """Count what the user is about to do against the hour's limits, or refuse it (``rate_limited``,
    not remembered: a retry later acts). Counted before the commit: a commit decided again after a
    concurrent write counts twice, which only errs on the safe side."""
    settings = ctx.runtime.settings
    limits = domain.Limits(rooms=settings.max_rooms_per_hour, invites=settings.max_invites_per_hour)
    doc, allowance = await storage.allowance(ctx.user_id or "")
    domain.spend(allowance, ctx.now().timestamp(), limits, rooms, invites)
    await storage.save_allowance(doc, allowance)


def new_room(state: RoomState) -> Room:
    """A room as its creator first sees it: no item yet (its announcement follows; PROTOCOL.md:
    ``last_seq`` is a snapshot). Afterwards messaging, which owns ``seq``, answers for rooms."""
    return Room(**state.view().model_dump(exclude={"meetup_id"}), last_seq=0)


async def open_meetup_room(data: internal.OpenMeetupRoom, ctx: Context) -> OpenedRoom:
    if (state := (await storage.load(data.room_id))[1]) is None:
        known = await ctx.users([ctx.user_id or "", *data.participant_ids])
        state, facts = domain.open_room(
            data.room_id,
            known[ctx.user_id or ""],
            data.name,
            data.image_url,
            data.participant_ids,
            known,
            ctx.now(),
            meetup_id=data.meetup_id,
        )
        await allowed(ctx, rooms=1, invites=len(state.participant_ids) - 1)
        await ctx.commit(RoomDoc.new(state), facts)
    return OpenedRoom(room=state.view())


async def invite_to_room(data: requests.InviteToRoom, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    known = await ctx.users([ctx.user_id or "", data.user_id])
    facts = domain.invite(state, known[ctx.user_id or ""], data.user_id, known.get(data.user_id))
    await allowed(ctx, invites=1)
    await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def leave_room(data: requests.LeaveRoom, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    known = await ctx.users([ctx.user_id or ""])
    facts = domain.leave(state, known[ctx.user_id or ""])
    await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def rename_room(data: requests.RenameRoom, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    renamer = (await ctx.users([ctx.user_id or ""])).get(ctx.user_id or "")
    if facts := domain.rename(state, ctx.user_id or "", data.name, renamer.name if renamer else None):
        await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def change_room_image(data: requests.ChangeRoomImage, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    if facts := domain.change_image(state, ctx.user_id or "", data.image_url):
        await ctx.commit(doc.with_state(state), facts, Empty())
    return Empty()


async def user_rooms(data: internal.UserRooms, ctx: Context) -> RoomIds:
    return RoomIds(room_ids=await storage.room_ids_of(ctx.user_id or ""))


COMMANDS: dict[str, CommandHandler] = {
    "create_room": create_room,
    "invite_to_room": invite_to_room,
    "leave_room": leave_room,
    "rename_room": rename_room,
    "change_room_image": change_room_image,
    "user_rooms": user_rooms,
    "open_meetup_room": open_meetup_room,
}

# The hand-over: who must have applied a change of a room before its reply leaves, by the command
# that hands it to them (each follower's own), with the events it takes. ``Context.commit`` sends
# them all at once and the reply is ``unavailable`` until every one has applied the change (a retry
# with the same id hands it over again). Otherwise a leaver could still post, vote or read the
# meetup while those workers' queues lag behind.
MEMBERSHIP = ("room.member_joined", "room.member_left")
FOLLOWERS = {
    "copy_room_changes": ROOM_EVENTS,  # messaging: who may read and post, the room's name and image
    "follow_membership": MEMBERSHIP,  # meetups: a meetup's attendees (get_meetup, create_poll)
    "remove_leavers": ("room.member_left",),  # polls: a leaver is no participant (vote_poll)
}
