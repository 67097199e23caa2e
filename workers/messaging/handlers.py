"""Everything the messaging worker consumes and answers: read these tables to know its interface.

Messaging decides from its own state: its copy of every room (``copy_rooms``, fed by the rooms
worker's events and handed over by rooms before a membership change is answered), so sending,
reading and listing ask no other worker. A send is one write: the item, stored with its event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from contracts import events, internal, requests
from contracts.common import Shape
from contracts.envelope import AnyEvent, Fact, Failure
from contracts.events import ItemAdded, MemberJoined, MemberLeft, RoomCreated, RoomUpdated
from contracts.requests import Empty, ItemPage, ItemReply, ReadMark, RoomList, RoomReply
from contracts.shapes import RoomItem, RoomSummary
from workers import presence
from workers.messaging import domain, storage
from workers.messaging.domain import RoomCopy
from workers.presence import PRESENCE
from workers.runtime.context import ATTEMPTS, Context, Forwarded, Runtime
from workers.runtime.outbox import RELAY_AFTER, RELAY_EVERY, Caller, Outbox, carry, stamp
from workers.runtime.store import ConcurrencyError
from workers.runtime.tables import Chore, Projection, Reaction, self_claiming, typed

RoomEvent = RoomCreated | MemberJoined | MemberLeft | RoomUpdated
ROOM_EVENTS = {
    "room.created": RoomCreated,
    "room.member_joined": MemberJoined,
    "room.member_left": MemberLeft,
    "room.updated": RoomUpdated,
}


async def participant(ctx: Context, room_id: str) -> RoomCopy:
    return domain.readable((await storage.copy(room_id))[1], ctx.user_id or "")


# Commands and queries -------------------------------------------------------------------------


@self_claiming(storage.refuse)  # the item's id derives from the command's key: storing it claims the key
async def send_message(data: requests.SendMessage, ctx: Context) -> ItemReply:
    assert ctx.user_id and ctx.cause.command_key
    item_id = storage.item_id_of(ctx.cause.command_key)
    user_id, now = ctx.user_id, ctx.now()
    try:
        item = await append(
            ctx,
            data.room_id,
            item_id,
            lambda copy, seq: domain.send_message(copy, user_id, data.content, item_id, seq, now),
            reply=lambda item: ItemReply(item=item),
        )
    except domain.MessagingError:
        if (sent := await storage.item(item_id)) is not None:  # a retry after the sender left
            return ItemReply(item=first_outcome(sent))
        raise
    return ItemReply(item=item)


async def get_room_items(data: requests.GetRoomItems, ctx: Context) -> ItemPage:
    await participant(ctx, data.room_id)
    items, has_more = await storage.items(data.room_id, domain.page(data.after_seq, data.before_seq, data.limit))
    return ItemPage(items=items, has_more=has_more)


async def get_room(data: requests.GetRoom, ctx: Context) -> RoomReply:
    copy = await participant(ctx, data.room_id)
    return RoomReply(room=copy.view(await storage.last_seq(copy.id)))


async def mark_room_read(data: requests.MarkRoomRead, ctx: Context) -> ReadMark:
    user_id = ctx.user_id or ""
    copy = await participant(ctx, data.room_id)
    doc, mark = await storage.mark(copy.id, user_id)
    own = await storage.own_latest(copy.id, user_id)
    facts = domain.mark_read(mark, own, data.seq, await storage.last_seq(copy.id))
    reply = ReadMark(last_read_seq=domain.in_effect(mark.seq, own))
    if facts:
        await ctx.commit(doc.update(mark), facts, reply)
    return reply


async def list_rooms(data: Empty, ctx: Context) -> RoomList:
    user_id = ctx.user_id or ""
    marks = await storage.marks_of(user_id)
    copies = await storage.copies_of(user_id)
    summaries = await asyncio.gather(*(summary(copy, user_id, marks.get(copy.id, 0)) for copy in copies))
    return RoomList(rooms=domain.latest_activity_first(summaries))


async def summary(copy: RoomCopy, user_id: str, mark: int) -> RoomSummary:
    """One room of ``list_rooms``: its last item, then, only where needed, the user's latest message
    (unless it is the last item) and the announcements after their mark (unless they read it all)."""
    last = await storage.last_item(copy.id)
    last_seq = last.seq if last else 0
    own = last_seq if last and last.sender_id == user_id else await storage.own_latest(copy.id, user_id)
    read = domain.in_effect(mark, own)
    announcements = await storage.announcements_after(copy.id, read) if read < last_seq else 0
    return RoomSummary(
        room=copy.view(last_seq),
        last_item=last,
        last_read_seq=read,
        unread_count=domain.unread(last_seq, read, announcements),
    )


MISSED_PER_ROOM = 20  # items of one room ``missed_items`` lists at most, the latest


async def missed_items(data: internal.MissedItems, ctx: Context) -> internal.Missed:
    """For notifications, once a user went offline: the items of their rooms since ``data.since``
    they have not read (``domain.missed``), with their events. Items messaging routed before its
    replica of presence knew the user was offline never reached notifications; it pushes them now."""
    user_id = ctx.user_id or ""
    marks = await storage.marks_of(user_id)
    rooms = await storage.copies_of(user_id)
    found = await asyncio.gather(
        *(storage.stored_since(room.id, marks.get(room.id, 0), data.since, MISSED_PER_ROOM) for room in rooms)
    )
    missed: list[dict[str, Any]] = []
    for stored in found:
        events_of = {item.seq: item.event for item in stored}
        missed += [events_of[item.seq] for item in domain.missed([item.view() for item in stored], user_id)]
    return internal.Missed.model_validate(
        {"items": [{"event_id": event["event_id"], "added": event["payload"]} for event in missed]}
    )


# The timeline ---------------------------------------------------------------------------------


COPY_FRESH = 1.0  # seconds a room copy read by this process serves sends (names, images; see append)
# Rooms whose timeline a process keeps: the one sent to least recently is forgotten beyond this, and
# read again (its last seq, one query) on its next send. About 2 KB each.
TIMELINES_KEPT = 10_000


WRITE_BATCH = 100  # items one write of a room stores at most


@dataclass
class Queued:
    """An item waiting for its room's write: ``published()`` is its entry as published (with the
    command's reply riding on it), made once it is stored; ``stored`` is settled then."""

    item: RoomItem
    entry: dict[str, Any]
    published: Callable[[], dict[str, Any]]
    stored: asyncio.Future[None]


@dataclass
class Timeline:
    """What this process knows of a room's timeline: its last ``seq`` (counting the items queued for
    the room's write), and the room's copy as read after the item at that ``seq`` was stored
    (``read_at``: monotonic seconds; None: read it again).

    Items are stored by one write per room at a time (group commit): the items queued while a write
    is on its way go together in the next one, in ``seq`` order. A busy room costs one insert per
    batch, not one per send, and its sends do not wait for each other's round trips.
    """

    last_seq: int
    copy: RoomCopy | None = None
    read_at: float = 0.0
    queued: list[Queued] = field(default_factory=list)
    writing: asyncio.Task[None] | None = None

    def store(self, outbox: Outbox, queued: Queued) -> asyncio.Future[None]:
        """Queue ``queued`` (its item at ``last_seq + 1``) for the room's next write. The future is
        settled once the item is stored and queued for publishing; it raises ``DuplicateKeyError``
        when the item's id or ``seq`` was taken, or the write's error when the write failed."""
        assert queued.item.seq == self.last_seq + 1
        self.queued.append(queued)
        self.last_seq = queued.item.seq
        if self.writing is None:
            self.writing = asyncio.create_task(self._write(outbox))
        return queued.stored

    async def _write(self, outbox: Outbox) -> None:
        try:
            while self.queued:
                batch, self.queued = self.queued[:WRITE_BATCH], self.queued[WRITE_BATCH:]
                try:
                    count = await storage.insert_items([(q.item, q.entry) for q in batch])
                    for q in batch[:count]:  # published in seq order, before their senders hear
                        outbox.publish_later(q.published(), storage.mark_published)
                        _settle(q.stored, None)
                except Exception as error:  # each send not yet answered fails as its own write would
                    self._fail(batch, error)
                    continue
                if count < len(batch):
                    self._fail(batch[count:], DuplicateKeyError(f"seq {batch[count].item.seq} or its item id is taken"))
        finally:
            self.writing = None

    def _fail(self, failed: list[Queued], error: Exception) -> None:
        """Items queued after a failed one were numbered after it: they fail with it, and the
        timeline goes back to the last stored ``seq`` (its copy is read again, as after a move)."""
        failed, self.queued = failed + self.queued, []
        self.last_seq, self.copy = failed[0].item.seq - 1, None
        for q in failed:
            _settle(q.stored, error)


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():  # its sender was cancelled meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def append(
    ctx: Context,
    room_id: str,
    item_id: str,
    decide: Callable[[RoomCopy | None, int], Fact],
    reply: Callable[[RoomItem], BaseModel] | None = None,
) -> RoomItem:
    """Store the item ``decide(copy, seq)`` makes at the room's next ``seq``, then have it published,
    with the command's ``reply`` riding on its room delivery when the caller offered a key (``carry``).

    The unique ``(room_id, seq)`` index is the check: a replica that wrote first takes the number
    and this one publishes what that one wrote (so the room's order holds) before trying the next.
    The unique item id makes a second copy of the same command, or of the same announcement, act
    once.

    This process remembers the last ``seq`` and the copy of each room it writes to (the latest
    ``TIMELINES_KEPT``), so a send reads nothing.
    The copy is safe to decide from because every membership change writes the copy first and then
    its announcement into the timeline, before rooms replies: a copy read after this process last
    learned the room's ``seq`` holds every change up to it, and an insert at the next ``seq``
    succeeds only if nothing (no announcement) came in between. So the copy is read again whenever
    the timeline moved under this process, after this process wrote an announcement, when it
    refuses someone (a member added meanwhile must not be refused), and after ``COPY_FRESH``
    (renames and images, which write no item).
    """
    timelines: OrderedDict[str, Timeline] = ctx.runtime.memory.setdefault("timelines", OrderedDict())
    outbox = ctx.runtime.outbox
    for _ in range(ATTEMPTS):
        async with ctx.lock(room_id):
            known = timelines.get(room_id)
            if known is not None:
                timelines.move_to_end(room_id)
            else:
                known = timelines[room_id] = Timeline(await storage.last_seq(room_id))
                while len(timelines) > TIMELINES_KEPT:  # the room written least recently
                    timelines.popitem(last=False)
                # Another replica's latest items may still be on their way: this process publishes
                # them too, before its own, so gateways get the room in order (they drop copies).
                for earlier in await storage.unpublished_in(room_id, known.last_seq):
                    outbox.publish_later(earlier, storage.mark_published)
            fresh = known.copy is None or time.monotonic() - known.read_at > COPY_FRESH
            if fresh:
                known.copy, known.read_at = (await storage.copy(room_id))[1], time.monotonic()
            try:
                fact = decide(known.copy, known.last_seq + 1)
            except domain.MessagingError:
                if fresh:
                    raise
                known.copy = None  # refused by a copy read earlier: decide again from the stored one
                continue
            assert isinstance(fact.payload, ItemAdded)
            item = fact.payload.item
            offline = presence.offline(item_recipients(fact), ctx.runtime.memory.get(PRESENCE, {}))
            fact = domain.routed_for_pushes(fact, offline)
            entry = stamp(fact, item.seq, ctx.cause, item.sent_at)
            published = partial(_published, entry, ctx.caller, item, reply)
            stored = known.store(outbox, Queued(item, entry, published, asyncio.get_running_loop().create_future()))
            if item.kind != "message":
                known.copy = None  # this process announced a change: its copy is read again next time
        try:
            await stored  # the room's lock is free meanwhile: the next sends join the next write
        except DuplicateKeyError:
            async with ctx.lock(room_id):
                if (done := await storage.item(item_id)) is not None:
                    if done.published_at is None:  # its first writer may have crashed before publishing
                        outbox.publish_later(done.event, storage.mark_published)
                    return first_outcome(done)
                for earlier in await storage.entries_after(room_id, known.last_seq):
                    outbox.publish_later(earlier, storage.mark_published)
                    known.last_seq = earlier["version"]
                known.copy = None  # the timeline moved under this process: perhaps a membership change
            continue
        return item
    raise ConcurrencyError(room_id)


def _published(
    entry: dict[str, Any], caller: Caller | None, item: RoomItem, reply: Callable[[RoomItem], BaseModel] | None
) -> dict[str, Any]:
    return carry(entry, caller, reply(item)) if reply else entry


def item_recipients(fact: Fact) -> list[str]:
    assert isinstance(fact.payload, ItemAdded)
    return fact.payload.recipients


def first_outcome(done: storage.Item) -> RoomItem:
    """What the first copy of a send stored: its item, or its refusal (raised again)."""
    if done.refusal is not None:
        raise Forwarded(Failure.model_validate(done.refusal))
    return done.view()


async def announce(ctx: Context, copy: RoomCopy, text: str, newcomers: tuple[str, ...] = ()) -> None:
    """The announcement of the event being handled, once however often that event comes."""
    assert ctx.event is not None
    item_id = announcement_id(ctx.event)
    now = ctx.now()
    await append(ctx, copy.id, item_id, lambda _, seq: domain.announce(copy, text, item_id, seq, now, newcomers))


def announcement_id(event: AnyEvent) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"announcement/{event.event_id}").hex


async def relay_items(runtime: Runtime) -> None:
    """Publish items whose publish a crash cut off (their writer never marked them)."""
    for entry in await storage.unpublished(runtime.now() - RELAY_AFTER):
        if entry["event_id"] not in runtime.outbox.pending:  # queued here, still on its way
            runtime.outbox.publish_later(entry, storage.mark_published)


# Reactions: the rooms' copies, their client events, announcements --------------------------------


async def copy_room(payload: RoomEvent, event: AnyEvent) -> None:
    doc, copy = await storage.copy(payload.room.id)
    if (new := domain.copy_room(copy, payload.room, domain.names_in(payload), event.version)) is not None:
        await storage.save_copy(doc, new)


async def rename_user(payload: events.ProfileChanged, event: AnyEvent) -> None:
    for doc in await storage.copy_docs_of(payload.user.id):
        copy = doc.state()
        if domain.rename_user(copy, payload.user.id, payload.user.name):
            await storage.save_copy(doc, copy)


async def follow_room(payload: RoomEvent, ctx: Context) -> None:
    """What members see of a rooms event: its client events, a newcomer's read mark, the announcement,
    in this order, so that an event whose announcement is stored has been followed whole (handed over
    by rooms, then from the queue: the second time changes nothing). A gateway drops a second copy of
    a client event."""
    assert ctx.event is not None
    text = domain.room_announcement(payload)
    if text is not None and await storage.item(announcement_id(ctx.event)) is not None:
        return
    # The copy holds the event before its announcement is stored (``append`` relies on it); from the
    # queues, copy_rooms may not have come to it yet.
    await copy_room(payload, ctx.event)
    room = domain.copy_room(None, payload.room, domain.names_in(payload), ctx.event.version)
    assert room is not None
    last_seq = await storage.last_seq(room.id)
    await ctx.runtime.outbox.send(ctx.event.event_id, domain.room_sends(ctx.event.type, payload, room.view(last_seq)))
    if isinstance(payload, MemberJoined):
        doc, mark = await storage.mark(room.id, payload.user_id)
        if facts := domain.welcome(mark, last_seq):
            await ctx.commit(doc.update(mark), facts)
    if text is not None:
        await announce(ctx, room, text, domain.newcomers(payload))


P = TypeVar("P", bound=Shape)


def announcement(type: str, payload: type[P], text: Callable[[P], str], room_id: Callable[[P], str]) -> Reaction:
    """A reaction to ``type`` that writes ``text(payload)`` into the room the event is about."""

    async def announce_it(data: P, ctx: Context) -> None:
        if (copy := (await storage.copy(room_id(data)))[1]) is None:
            raise ConcurrencyError(room_id(data))  # the room's creation is still on its way: again later
        await announce(ctx, copy, text(data))

    return Reaction(announce_it, {type: payload})


COMMANDS = {
    "send_message": send_message,
    "get_room_items": get_room_items,
    "get_room": get_room,
    "mark_room_read": mark_room_read,
    "list_rooms": list_rooms,
    "missed_items": missed_items,
}

REACTIONS = {
    "follow_rooms": Reaction(follow_room, ROOM_EVENTS),
    "announce_meetup_created": announcement(
        "meetup.created", events.MeetupCreated, domain.meetup_created, lambda e: e.meetup.room_id
    ),
    "announce_meetup_moved": announcement(
        "meetup.moved", events.MeetupMoved, domain.meetup_moved, lambda e: e.meetup.room_id
    ),
    "announce_poll_created": announcement("poll.created", events.PollCreated, domain.poll_created, lambda e: e.room_id),
    "announce_poll_closed": announcement("poll.closed", events.PollClosed, domain.poll_closed, lambda e: e.room_id),
}

PROJECTIONS = {
    "copy_rooms": Projection(copy_room, ROOM_EVENTS, (storage.RoomCopyDoc,)),
    "name_users": Projection(rename_user, typed(events.ProfileChanged, "user.profile_changed"), (storage.RoomCopyDoc,)),
    **presence.PROJECTIONS,
}

MIRRORS = presence.MIRRORS

CHORES = {
    "relay_items": Chore(lambda settings: RELAY_EVERY, relay_items),
}
