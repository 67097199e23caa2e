"""Everything the messaging worker consumes and answers: read these two tables to know its interface."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import structlog

from contracts import events, internal, requests
from contracts.common import Shape
from contracts.envelope import AnyEvent
from contracts.errors import Rejected
from contracts.requests import ItemPage, ItemReply
from contracts.shapes import Room, RoomItem, User
from workers.messaging import domain, storage
from workers.runtime.service import Context, Projection, Reaction

log = structlog.get_logger()


async def readable_room(ctx: Context, room_id: str) -> Room:
    """The room, if the user is a participant: asked of rooms, which owns membership, every time."""
    reply = await ctx.ask("rooms", "room_access", internal.RoomAccess(room_id=room_id))
    return internal.RoomReply.model_validate(reply).room


async def sender(ctx: Context) -> User:
    user_id = ctx.user_id or ""
    return (await ctx.users([user_id]))[user_id]


async def send_message(data: requests.SendMessage, ctx: Context) -> ItemReply:
    room, me = await readable_room(ctx, data.room_id), await sender(ctx)
    async with ctx.lock(data.room_id):
        doc = await storage.timeline(data.room_id)
        state = doc.state()
        item, facts = domain.send_message(state, room, me, data.content, uuid.uuid4().hex, ctx.now())
        reply = ItemReply(item=item)
        await ctx.commit(doc.update(state), facts, reply)
    try:  # read-your-writes for the sender's mark and the room list; the reaction is the durable path
        await ctx.ask("rooms", "item_sent", internal.ItemSent(item=item))
    except Rejected as refused:
        log.warning("rooms did not take the item in yet", code=refused.code)
    return reply


async def get_room_items(data: requests.GetRoomItems, ctx: Context) -> ItemPage:
    await readable_room(ctx, data.room_id)
    items, has_more = await storage.items(data.room_id, domain.page(data.after_seq, data.before_seq, data.limit))
    return ItemPage(items=items, has_more=has_more)


async def room_snapshot(ctx: Context, room_id: str) -> Room:
    reply = await ctx.ask("rooms", "room_snapshot", internal.RoomSnapshot(room_id=room_id))
    return internal.RoomReply.model_validate(reply).room


P = TypeVar("P", bound=Shape)


def announcement(
    type: str, payload: type[P], text: Callable[[P], str], room_id: Callable[[P], str] | None = None
) -> Reaction:
    """A reaction to ``type`` that writes ``text(payload)`` into the room the event is about.

    Rooms' events carry the room; for the others, the room is asked of rooms.
    """

    async def announce(event: AnyEvent, ctx: Context) -> None:
        data = payload.model_validate(event.payload)
        room: Room = data.room if room_id is None else await room_snapshot(ctx, room_id(data))  # type: ignore[attr-defined]
        async with ctx.lock(room.id):
            doc = await storage.timeline(room.id)
            state = doc.state()
            if facts := domain.announce(state, room, text(data), event.event_id, uuid.uuid4().hex, ctx.now()):
                await ctx.commit(doc.update(state), facts)

    return Reaction((type,), announce)


async def index_item(event: AnyEvent) -> None:
    await storage.put_item(RoomItem.model_validate(event.payload["item"]))


COMMANDS = {
    "send_message": send_message,
    "get_room_items": get_room_items,
}

REACTIONS = {
    "announce_room_created": announcement("room.created", events.RoomOpened, domain.room_created),
    "announce_member_joined": announcement("room.member_joined", events.MemberAdded, domain.member_joined),
    "announce_member_left": announcement("room.member_left", events.MemberRemoved, domain.member_left),
    "announce_meetup_created": announcement(
        "meetup.created", events.MeetupOpened, domain.meetup_created, lambda e: e.meetup.room_id
    ),
    "announce_meetup_moved": announcement(
        "meetup.moved", events.MeetupMoved, domain.meetup_moved, lambda e: e.meetup.room_id
    ),
    "announce_poll_created": announcement("poll.created", events.PollOpened, domain.poll_created, lambda e: e.room_id),
    "announce_poll_closed": announcement("poll.closed", events.PollFinished, domain.poll_closed, lambda e: e.room_id),
}

PROJECTIONS = {
    "index_items": Projection(("room.item_added",), index_item, (storage.Item,)),
}
