"""Everything the rooms worker consumes and answers: read these two tables to know its interface."""

from __future__ import annotations

import uuid

from contracts import internal, requests
from contracts.common import Shape
from contracts.envelope import AnyEvent
from contracts.internal import RoomIds
from contracts.requests import Empty, ReadMark, RoomList, RoomReply
from contracts.shapes import RoomItem, RoomSummary
from workers.rooms import domain, storage
from workers.rooms.storage import RoomDoc
from workers.runtime.service import Context, Projection, Reaction


class Done(Shape):
    pass


async def participant(ctx: Context, room_id: str) -> tuple[RoomDoc, domain.RoomState]:
    doc, state = await storage.load(room_id)
    state = domain.readable(state, ctx.user_id or "")
    assert doc is not None
    return doc, state


async def create_room(data: requests.CreateRoom, ctx: Context) -> RoomReply:
    assert ctx.user_id and ctx.cause.command_key
    # The id derives from the command, so a retried create_room can only ever make one room.
    room_id = uuid.uuid5(uuid.NAMESPACE_URL, ctx.cause.command_key).hex
    if (state := (await storage.load(room_id))[1]) is not None:  # the same id, reused after 24 hours
        return RoomReply(room=state.view())
    known = await ctx.users([ctx.user_id, *data.participant_ids])
    state, facts = domain.open_room(
        room_id, known[ctx.user_id], data.name, data.image_url, data.participant_ids, known, ctx.now()
    )
    reply = RoomReply(room=state.view())
    await ctx.commit(RoomDoc.new(state), facts, reply)
    return reply


async def open_meetup_room(data: internal.OpenMeetupRoom, ctx: Context) -> RoomReply:
    if (existing := (await storage.load(data.room_id))[1]) is not None:
        return RoomReply(room=existing.view())
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
    reply = RoomReply(room=state.view())
    await ctx.commit(RoomDoc.new(state), facts, reply)
    return reply


async def invite_to_room(data: requests.InviteToRoom, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    known = await ctx.users([ctx.user_id or "", data.user_id])
    facts = domain.invite(state, known[ctx.user_id or ""], data.user_id, known.get(data.user_id))
    await ctx.commit(doc.update(state), facts, Empty())
    return Empty()


async def leave_room(data: requests.LeaveRoom, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    known = await ctx.users([ctx.user_id or ""])
    facts = domain.leave(state, known[ctx.user_id or ""])
    await ctx.commit(doc.update(state), facts, Empty())
    return Empty()


async def mark_room_read(data: requests.MarkRoomRead, ctx: Context) -> ReadMark:
    doc, state = await participant(ctx, data.room_id)
    facts = domain.mark_read(state, ctx.user_id or "", data.seq)
    reply = ReadMark(last_read_seq=state.read_marks[ctx.user_id or ""])
    if facts:
        await ctx.commit(doc.update(state), facts, reply)
    return reply


async def rename_room(data: requests.RenameRoom, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    if facts := domain.rename(state, ctx.user_id or "", data.name):
        await ctx.commit(doc.update(state), facts, Empty())
    return Empty()


async def change_room_image(data: requests.ChangeRoomImage, ctx: Context) -> Empty:
    doc, state = await participant(ctx, data.room_id)
    if facts := domain.change_image(state, ctx.user_id or "", data.image_url):
        await ctx.commit(doc.update(state), facts, Empty())
    return Empty()


async def get_room(data: requests.GetRoom, ctx: Context) -> RoomReply:
    _, state = await participant(ctx, data.room_id)
    return RoomReply(room=state.view())


room_access = get_room  # the same answer, asked by other workers


async def room_snapshot(data: internal.RoomSnapshot, ctx: Context) -> RoomReply:
    _, state = await storage.load(data.room_id)
    if state is None:
        raise domain.RoomNotFoundError()
    return RoomReply(room=state.view())


async def list_rooms(data: Empty, ctx: Context) -> RoomList:
    user_id = ctx.user_id or ""
    states = sorted(await storage.rooms_of(user_id), key=domain.RoomState.last_activity, reverse=True)
    summaries = []
    for state in states:
        mark = state.read_marks.get(user_id, 0)
        summaries.append(
            RoomSummary(
                room=state.view(),
                last_item=state.last_item,
                last_read_seq=mark,
                unread_count=await storage.unread(state.id, user_id, mark),
            )
        )
    return RoomList(rooms=summaries)


async def user_rooms(data: internal.UserRooms, ctx: Context) -> RoomIds:
    return RoomIds(room_ids=[state.id for state in await storage.rooms_of(ctx.user_id or "")])


async def take_in(item: RoomItem, ctx: Context) -> None:
    """A new item: the room's activity, and a message moves its sender's read mark (idempotent)."""
    await storage.record_activity(item)
    await storage.count_message(item)
    doc, state = await storage.load(item.room_id)
    if doc is not None and state is not None and (facts := domain.message_sent(state, item)):
        await ctx.commit(doc.update(state), facts)


async def item_sent(data: internal.ItemSent, ctx: Context) -> Done:
    await take_in(data.item, ctx)
    return Done()


async def move_sender_mark(event: AnyEvent, ctx: Context) -> None:
    await take_in(RoomItem.model_validate(event.payload["item"]), ctx)


async def track_activity(event: AnyEvent) -> None:
    item = RoomItem.model_validate(event.payload["item"])
    await storage.record_activity(item)
    await storage.count_message(item)


COMMANDS = {
    "create_room": create_room,
    "invite_to_room": invite_to_room,
    "leave_room": leave_room,
    "mark_room_read": mark_room_read,
    "rename_room": rename_room,
    "change_room_image": change_room_image,
    "list_rooms": list_rooms,
    "get_room": get_room,
    "user_rooms": user_rooms,
    "room_access": room_access,
    "room_snapshot": room_snapshot,
    "open_meetup_room": open_meetup_room,
    "item_sent": item_sent,
}

REACTIONS = {
    "move_sender_mark": Reaction(("room.item_added",), move_sender_mark),
}

PROJECTIONS = {
    "track_activity": Projection(("room.item_added",), track_activity, (storage.RoomActivity, storage.CountedMessage)),
}
