"""Everything the messaging worker consumes and answers: read these tables to know its interface.

Messaging decides from its own state: its copy of every room (``copy_rooms``, fed by the rooms
worker's events and handed over by rooms before a membership change is answered), so sending,
reading and listing ask no other worker. A send is one write: the item, stored with its event
(``timeline.append``).

An edit, a delete or a reaction is a change entry of the timeline, appended the same way; what it
makes of the item it changes is the item's state, a projection of the entries (``apply_changes``),
applied at once by the command, from the queue again (which heals a crash in between), and read
back by ``present`` (which heals it too). A delete also rewrites what stored the item's text
(``erase_deleted``, likewise at once and from its queue).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from boochat import filelinks
from contracts import events, internal, requests
from contracts.common import Shape
from contracts.envelope import AnyEvent, Reply
from contracts.events import MemberJoined, MemberLeft, RoomCreated, RoomUpdated
from contracts.requests import AttachmentLinks, Empty, ItemHistory, ItemPage, ItemReply, ReadMark, RoomList, RoomReply
from contracts.shapes import CHANGE_KINDS, Attachment, Facts, ItemKind, Quote, RoomItem, RoomSummary
from workers import presence
from workers.messaging import domain, storage, timeline
from workers.messaging.domain import RoomCopy
from workers.runtime.context import Context, Runtime
from workers.runtime.dispatch import apply_now
from workers.runtime.outbox import RELAY_EVERY, Carried
from workers.runtime.store import IDEMPOTENCY_WINDOW, ConcurrencyError
from workers.runtime.tables import Chore, CommandHandler, Projection, Reaction, self_claiming, typed

RoomEvent = RoomCreated | MemberJoined | MemberLeft | RoomUpdated
ROOM_EVENTS: dict[str, type[Shape]] = {
    "room.created": RoomCreated,
    "room.member_joined": MemberJoined,
    "room.member_left": MemberLeft,
    "room.updated": RoomUpdated,
}


async def participant(ctx: Context, room_id: str) -> RoomCopy:
    return domain.readable((await storage.copy(room_id))[1], ctx.user_id or "")


# Commands and queries -------------------------------------------------------------------------


async def remember_refusal(command_key: str, reply: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A refused send's reply, stored under its item id; or, when a copy of the send was stored there
    first within the idempotency window (a copy with other data, retried), that copy's outcome: its
    item, or its refusal."""
    first = await storage.refuse(command_key, reply)
    if first is None or first.sent_at < now - IDEMPOTENCY_WINDOW:
        return reply
    if first.refusal is not None:
        return {"error": first.refusal}
    return Reply.of(ItemReply(item=first.view())).model_dump(mode="json")


@self_claiming(remember_refusal)  # the item's id derives from the command's key: storing it claims the key
async def send_message(data: requests.SendMessage, ctx: Context) -> ItemReply | Carried:
    """Reply ``Carried`` when the reply rides on the new item's room delivery (``timeline.append``)."""
    assert ctx.user_id and ctx.cause.command_key
    item_id = storage.item_id_of(ctx.cause.command_key)
    user_id, now = ctx.user_id, ctx.now()
    quoted = await quote(ctx, data.room_id, data.reply_to) if data.reply_to is not None else None
    attached = await attachments(ctx, data, item_id) if data.attachments else ()
    mentions = domain.Mentions(tuple(data.mentions), data.mentions_room, ctx.runtime.settings.room_mention_max_members)
    try:
        appended = await timeline.append(
            ctx,
            data.room_id,
            item_id,
            lambda copy, seq: domain.send_message(
                copy, user_id, data.content, item_id, seq, now, quoted, mentions, attached
            ),
            reply=lambda item: ItemReply(item=item),
        )
    except domain.MessagingError:
        # A copy of a send that was stored, the sender gone since: within the idempotency window it
        # gets the first outcome; after it, the id is a new command's, refused like any other.
        if (sent := await storage.item(item_id, since=now - IDEMPOTENCY_WINDOW)) is not None:
            return ItemReply(item=timeline.first_outcome(sent))
        raise
    reply = ItemReply(item=appended.item)
    return Carried(reply) if appended.carried else reply


async def attachments(ctx: Context, data: requests.SendMessage, item_id: str) -> tuple[Attachment, ...]:
    """The uploads a message names, claimed from the media worker, which owns them (one request, only
    for messages with attachments; a member's, checked first)."""
    await participant(ctx, data.room_id)
    claim = internal.ClaimUploads(room_id=data.room_id, item_id=item_id, upload_ids=data.attachments)
    return tuple(internal.Attachments.model_validate(await ctx.ask("media", "claim_uploads", claim)).attachments)


async def room_access(data: internal.RoomAccess, ctx: Context) -> Empty:
    """Media asks, before it opens an upload slot: is the user a member of the room?"""
    await participant(ctx, data.room_id)
    return Empty()


async def get_attachment_links(data: requests.GetAttachmentLinks, ctx: Context) -> AttachmentLinks:
    """Fresh links to a shown item's files, for a member (asked, never kept in the item: they expire)."""
    await participant(ctx, data.room_id)
    found = domain.target(await present(data.room_id, data.seq))
    settings = ctx.runtime.settings
    key, expires = filelinks.key_of(settings.links_secret), int(ctx.now().timestamp()) + settings.file_link_ttl_seconds
    return AttachmentLinks(links=[filelinks.download(settings.files_base, key, a, expires) for a in found.attachments])


async def quote(ctx: Context, room_id: str, seq: int) -> Quote:
    """What a reply to the item at ``seq`` quotes of it (a member's, checked first)."""
    await participant(ctx, room_id)
    return domain.quote(domain.target(await present(room_id, seq), "data.reply_to"))


# Changes: edits, deletes, reactions -----------------------------------------------------------


async def remember_change_refusal(command_key: str, reply: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A refused change command's reply, stored under its entry's id; or, when a copy of it was
    stored there first within the idempotency window, that copy's outcome: its refusal, or the
    item it changed (or left unchanged) as it now is."""
    first = await storage.refuse(command_key, reply)
    if first is None or first.sent_at < now - IDEMPOTENCY_WINDOW:
        return reply
    if first.refusal is not None:
        return {"error": first.refusal}
    item = await present(first.unchanged_in or first.room_id, first.target_seq or 0)
    return Reply.of(ItemReply(item=item)).model_dump(mode="json") if item is not None else reply


Decide = Callable[[RoomCopy, RoomItem], domain.Draft | None]


async def change_item(ctx: Context, room_id: str, seq: int, decide: Decide) -> ItemReply:
    """One change of the item at ``seq``: ``decide`` it from the room's copy and the item as it now
    is, append its entry, apply it; reply the item as changed. The entry's id derives from the
    command's key (storing it claims the key); a change that changes nothing is remembered instead."""
    assert ctx.user_id and ctx.cause.command_key
    key, user_id, now = ctx.cause.command_key, ctx.user_id, ctx.now()
    entry_id = storage.item_id_of(key)
    async with ctx.lock(domain.state_id(room_id, seq)):  # one change of an item at a time in this process
        if (done := await storage.item(entry_id, since=now - IDEMPOTENCY_WINDOW)) is not None:
            return await outcome(done, room_id, seq)  # a copy of this command was here first
        copy = await participant(ctx, room_id)
        # Not healed here: a change entry stored but not applied (a crash in between) is applied by
        # the projection from its queue, or by a retry of its command (``outcome``); reading every
        # change entry of the item before each change made reactions cost twice their reads.
        item = domain.target(await present(room_id, seq, heal=False))
        if (draft := decide(copy, item)) is None:
            first = await storage.unchanged(key, room_id, seq)
            return await outcome(first, room_id, seq) if first is not None else ItemReply(item=item)
        replies = await storage.replies_to(room_id, seq) if draft.kind in ("edit", "delete") else []
        appended = await timeline.append(
            ctx,
            room_id,
            entry_id,
            lambda copy, at: domain.change(copy, user_id, item, draft, replies, entry_id, at, now),
            target=seq,
        )
        await apply(appended.item, [r.seq for r in replies if domain.requote(r, draft.kind)])
    return ItemReply(item=domain.applied(item, appended.item))


async def outcome(first: storage.Item, room_id: str, seq: int) -> ItemReply:
    """What an earlier copy of a change command did: its refusal (raised again), or the item as it
    now is, with that copy's change applied (it may have stopped before applying it)."""
    timeline.first_outcome(first)
    return ItemReply(item=domain.target(await present(room_id, seq)))


async def present(room_id: str, seq: int, heal: bool = True) -> RoomItem | None:
    """The entry at ``seq`` as it now is. With ``heal``, change entries of it that are stored but not
    applied to its state (a crash came in between) are applied first."""
    found = await storage.item_at(room_id, seq)
    if found is None or found.kind in CHANGE_KINDS:
        return found.view() if found is not None else None
    _, state = await storage.state(room_id, seq)
    if heal and (missing := domain.unrecorded(state, await storage.changes_of(room_id, seq))):
        await apply_all(missing)
        _, state = await storage.state(room_id, seq)
    return domain.shown(found.view(), state)


async def apply(entry: RoomItem, quoting: list[int]) -> None:
    """What the change ``entry`` makes of its item (and of the replies quoting it, ``quoting``)."""
    await record(entry)
    for seq in quoting:
        await record_quote(entry.room_id, seq, entry.kind)


async def apply_all(entries: list[RoomItem]) -> None:
    for entry in entries:
        await record(entry)


async def record(entry: RoomItem) -> None:
    doc, state = await storage.state(entry.room_id, entry.target_seq or 0)
    if domain.record(state, entry):
        await storage.save_state(doc, state)


async def record_quote(room_id: str, seq: int, kind: ItemKind) -> None:
    doc, state = await storage.state(room_id, seq)
    if domain.record_quote(state, kind):
        await storage.save_state(doc, state)


@self_claiming(remember_change_refusal)  # the entry's id derives from the command's key: storing it claims the key
async def edit_message(data: requests.EditMessage, ctx: Context) -> ItemReply:
    window = timedelta(seconds=ctx.runtime.settings.edit_window_seconds)
    user_id, now = ctx.user_id or "", ctx.now()
    return await change_item(
        ctx, data.room_id, data.seq, lambda _, item: domain.edit(item, user_id, data.content, now, window)
    )


@self_claiming(remember_change_refusal)
async def delete_message(data: requests.DeleteMessage, ctx: Context) -> ItemReply:
    """The tombstone; the message's text is erased before the reply (again on a retry: a crash may
    have come in between)."""
    user_id = ctx.user_id or ""
    reply = await change_item(ctx, data.room_id, data.seq, lambda copy, item: domain.delete(copy, item, user_id))
    await erase_deleted_item(reply.item)
    return reply


@self_claiming(remember_change_refusal)
async def add_reaction(data: requests.ChangeReaction, ctx: Context) -> ItemReply:
    user_id = ctx.user_id or ""
    return await change_item(ctx, data.room_id, data.seq, lambda _, item: domain.react(item, user_id, data.emoji))


@self_claiming(remember_change_refusal)
async def remove_reaction(data: requests.ChangeReaction, ctx: Context) -> ItemReply:
    user_id = ctx.user_id or ""
    return await change_item(ctx, data.room_id, data.seq, lambda _, item: domain.unreact(item, user_id, data.emoji))


async def get_item_history(data: requests.GetItemHistory, ctx: Context) -> ItemHistory:
    await participant(ctx, data.room_id)
    found = await storage.item_at(data.room_id, data.seq)
    original = domain.target(found.view() if found is not None else None)
    _, state = await storage.state(data.room_id, data.seq)
    return ItemHistory(versions=domain.history(original, state))


async def apply_changes(payload: events.ItemChanged, event: AnyEvent) -> None:
    """The projection of change entries into items' states (the command applied it already, or a
    crash stopped it: applying it again changes nothing more)."""
    await apply(payload.change, payload.quoting)


async def erase_deleted(payload: events.ItemChanged, ctx: Context) -> None:
    """A deleted message's text goes from every stored entry (the command did it already, or a
    crash stopped it: doing it again changes nothing more)."""
    if payload.change.kind == "delete":
        await erase_deleted_item(payload.item)


async def erase_deleted_item(item: RoomItem) -> None:
    if item.deleted_at is not None:
        await storage.erase(item)


# Queries and read marks -----------------------------------------------------------------------


async def get_room_items(data: requests.GetRoomItems, ctx: Context) -> ItemPage:
    await participant(ctx, data.room_id)
    page = domain.page(data.after_seq, data.before_seq, data.limit)
    items, has_more = await storage.items(data.room_id, page, changes=data.with_changes)
    if not data.with_changes:
        return ItemPage(items=items, has_more=has_more)
    targets = await storage.items_at(data.room_id, domain.targets_of(items))
    return ItemPage(items=items, has_more=has_more, targets=targets)


async def get_room(data: requests.GetRoom, ctx: Context) -> RoomReply:
    copy = await participant(ctx, data.room_id)
    return RoomReply(room=copy.view(await storage.last_seq(copy.id)))


async def mark_room_read(data: requests.MarkRoomRead, ctx: Context) -> ReadMark:
    user_id = ctx.user_id or ""
    copy = await participant(ctx, data.room_id)
    doc, mark = await storage.mark(copy.id, user_id)
    own = await storage.own_latest(copy.id, user_id)
    facts = domain.mark_read(mark, own, data.seq, await storage.last_shown_seq(copy.id))
    reply = ReadMark(last_read_seq=domain.in_effect(mark.seq, own))
    if facts:
        await ctx.commit(doc.with_state(mark), facts, reply)
    return reply


async def set_room_notifications(data: requests.SetRoomNotifications, ctx: Context) -> Empty:
    """Kept with the user's read mark in the room; told only when it changes."""
    copy = await participant(ctx, data.room_id)
    doc, mark = await storage.mark(copy.id, ctx.user_id or "")
    if facts := domain.set_notifications(mark, data.level):
        await ctx.commit(doc.with_state(mark), facts, Empty())
    return Empty()


async def list_rooms(data: requests.ListRooms, ctx: Context) -> RoomList:
    """The ``limit`` latest rooms: each room's last item orders them, the rest of a summary is read
    only for those listed."""
    user_id = ctx.user_id or ""
    marks = await storage.marks_of(user_id)
    copies = await storage.copies_of(user_id)
    tails = await asyncio.gather(*(storage.tail(copy.id) for copy in copies))
    last_seqs = {copy.id: last_seq for copy, (last_seq, _) in zip(copies, tails, strict=True)}
    lasts = {copy.id: last for copy, (_, last) in zip(copies, tails, strict=True) if last is not None}
    rooms = [(copy, lasts[copy.id].view() if copy.id in lasts else None) for copy in copies]
    listed = domain.latest_activity_first(rooms, data.limit)
    # A change of an item comes after it: a room's last item with nothing after it is as it was sent.
    changed = [lasts[copy.id] for copy, last in listed if last is not None and last_seqs[copy.id] > last.seq]
    views = {item.id: item for item in await storage.shown(changed)}
    summaries = await asyncio.gather(
        *(
            summary(copy, views.get(last.id, last) if last else None, last_seqs[copy.id], user_id, marks.get(copy.id))
            for copy, last in listed
        )
    )
    return RoomList(rooms=summaries, has_more=len(copies) > len(listed))


async def summary(
    copy: RoomCopy, last: RoomItem | None, last_seq: int, user_id: str, mark: domain.ReadMark | None
) -> RoomSummary:
    """One room of ``list_rooms``, its ``last`` message or announcement read (and its ``last_seq``,
    of any entry): only where needed, the user's latest message (unless it is the last item), the
    entries that are no message and the mentions after their mark (unless they read it all)."""
    shown_seq = last.seq if last else 0
    own = shown_seq if last and last.sender_id == user_id else await storage.own_latest(copy.id, user_id)
    read = domain.in_effect(mark.seq if mark else 0, own)
    others, mentions = (0, 0)
    if read < shown_seq:
        others, mentions = await asyncio.gather(
            storage.others_between(copy.id, read, shown_seq), storage.mentions_after(copy.id, user_id, read)
        )
    return RoomSummary(
        room=copy.view(last_seq),
        last_item=last,
        last_read_seq=read,
        unread_count=domain.unread(shown_seq, read, others),
        mention_count=mentions,
        notifications=mark.notifications if mark else "all",
    )


MISSED_PER_ROOM = 20  # items of one room ``missed_items`` lists at most, the latest


async def missed_items(data: internal.MissedItems, ctx: Context) -> internal.Missed:
    """For notifications, once a user went offline: the items of their rooms no connection of theirs
    sent them (after ``data.delivered``'s ``seq`` of the room, else since ``data.since``) that they
    have not read (``domain.missed``), with their events. Items messaging routed before its replica
    of presence knew the user was offline never reached notifications; it pushes them now."""
    user_id = ctx.user_id or ""
    marks = await storage.marks_of(user_id)
    rooms = await storage.copies_of(user_id)
    starts = {
        room.id: domain.missed_after(
            mark.seq if (mark := marks.get(room.id)) else 0, data.delivered.get(room.id), data.since
        )
        for room in rooms
    }
    found = await asyncio.gather(
        *(storage.stored_since(room_id, seq, since, MISSED_PER_ROOM) for room_id, (seq, since) in starts.items())
    )
    missed: list[internal.MissedItem] = []
    for stored in found:
        events_of = {item.seq: item.event for item in stored if item.event is not None}
        for item in domain.missed([item.view() for item in stored], user_id):
            event = events_of[item.seq]
            missed.append(internal.MissedItem.model_validate({"event_id": event.event_id, "added": event.payload}))
    return internal.Missed(items=missed)


async def announce(ctx: Context, copy: RoomCopy, text: str, facts: Facts, newcomers: tuple[str, ...] = ()) -> None:
    """The announcement of the event being handled (its text and its ``facts``), once however often
    that event comes."""
    assert ctx.event is not None
    item_id = announcement_id(ctx.event)
    now = ctx.now()
    await timeline.append(
        ctx, copy.id, item_id, lambda _, seq: domain.announce(copy, text, item_id, seq, now, newcomers, facts)
    )


def announcement_id(event: AnyEvent) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"announcement/{event.event_id}").hex


# Reactions: the rooms' copies, their client events, announcements --------------------------------


async def copy_room(payload: RoomEvent, event: AnyEvent) -> None:
    doc, copy = await storage.copy(payload.room.id)
    if (new := domain.copy_room(copy, payload.room, domain.names_in(payload), event.version)) is not None:
        await storage.save_copy(doc, new)


async def rename_user(payload: events.ProfileChanged, event: AnyEvent) -> None:
    for doc in await storage.copy_docs_of(payload.user.id):
        copy = doc.state()
        if domain.rename_user(copy, payload.user.id, payload.user.name, event.version):
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
            await ctx.commit(doc.with_state(mark), facts)
    if text is not None:
        await announce(ctx, room, text, domain.facts_of(payload), domain.newcomers(payload))


A = TypeVar("A", bound=domain.Announced | domain.Polled)  # an event that is announced


def announcement(type: str, payload: type[A], text: Callable[[A], str], room_id: Callable[[A], str]) -> Reaction:
    """A reaction to ``type`` that writes ``text(payload)``, with its facts, into the room the event is about."""

    async def announce_it(data: A, ctx: Context) -> None:
        if (copy := (await storage.copy(room_id(data)))[1]) is None:
            raise ConcurrencyError(room_id(data))  # the room's creation is still on its way: again later
        await announce(ctx, copy, text(data), domain.facts_of(data))

    return Reaction(announce_it, {type: payload})


async def copy_room_changes(data: internal.HandOver, ctx: Context) -> Empty:
    """Rooms hands a change of a room over before it answers (its ``FOLLOWERS``): the copy and what
    members see of it, now, as ``copy_rooms`` and ``follow_rooms`` do from their queues."""
    await apply_now(ctx.runtime, data.events, PROJECTIONS["copy_rooms"], REACTIONS["follow_rooms"])
    return Empty()


COMMANDS: dict[str, CommandHandler] = {
    "send_message": send_message,
    "edit_message": edit_message,
    "delete_message": delete_message,
    "add_reaction": add_reaction,
    "remove_reaction": remove_reaction,
    "set_room_notifications": set_room_notifications,
    "get_item_history": get_item_history,
    "get_attachment_links": get_attachment_links,
    "room_access": room_access,
    "get_room_items": get_room_items,
    "get_room": get_room,
    "mark_room_read": mark_room_read,
    "list_rooms": list_rooms,
    "missed_items": missed_items,
    "copy_room_changes": copy_room_changes,
}

ITEM_CHANGED = typed(events.ItemChanged, "room.item_changed")

REACTIONS = {
    "follow_rooms": Reaction(follow_room, ROOM_EVENTS),
    "erase_deleted": Reaction(erase_deleted, ITEM_CHANGED),
    "announce_meetup_created": announcement(
        "meetup.created", events.MeetupCreated, domain.meetup_created, lambda e: e.meetup.room_id
    ),
    "announce_meetup_moved": announcement(
        "meetup.moved", events.MeetupMoved, domain.meetup_moved, lambda e: e.meetup.room_id
    ),
    "announce_meetup_cancelled": announcement(
        "meetup.cancelled", events.MeetupCancelled, domain.meetup_cancelled, lambda e: e.meetup.room_id
    ),
    "announce_poll_created": announcement("poll.created", events.PollCreated, domain.poll_created, lambda e: e.room_id),
    "announce_poll_closed": announcement("poll.closed", events.PollClosed, domain.poll_closed, lambda e: e.room_id),
}

PROJECTIONS = {
    "copy_rooms": Projection(copy_room, ROOM_EVENTS, (storage.RoomCopyDoc,)),
    "name_users": Projection(rename_user, typed(events.ProfileChanged, "user.profile_changed"), (storage.RoomCopyDoc,)),
    "apply_changes": Projection(apply_changes, ITEM_CHANGED, (storage.ItemStateDoc,)),
    **presence.PROJECTIONS,
}

MIRRORS = presence.MIRRORS

FORGET_EVERY = 600.0  # seconds between two deletions of refusals older than the idempotency window


async def forget_refusals(runtime: Runtime) -> None:
    """Refused sends are remembered for the idempotency window, not for ever."""
    await storage.forget_refusals(runtime.now() - IDEMPOTENCY_WINDOW)


CHORES = {
    "relay_items": Chore(lambda settings: RELAY_EVERY, timeline.relay_items),
    "mark_published": Chore(lambda settings: timeline.MARK_EVERY, timeline.mark_published, last=True),
    "forget_refusals": Chore(lambda settings: FORGET_EVERY, forget_refusals),
}
