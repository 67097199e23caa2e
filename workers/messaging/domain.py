"""Messaging: everything measured in ``seq``, sans-I/O. A room's timeline (messages, announcements
and change entries numbered 1, 2, 3 ... with no gaps), what changes make of an item (edits,
deletes, reactions), read marks, unread counts and notification levels, decided from messaging's
own copy of each room (kept from the rooms worker's events)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.common import format_time, parse_time
from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import (
    ItemAdded,
    ItemChanged,
    MeetupCancelled,
    MeetupCreated,
    MeetupMoved,
    MemberJoined,
    MemberLeft,
    NotificationsSet,
    PollClosed,
    PollCreated,
    RoomCreated,
    RoomInfo,
    RoomRead,
    RoomUpdated,
)
from contracts.frames import (
    ItemAddedFrame,
    ItemChangedFrame,
    MemberJoinedFrame,
    MemberLeftFrame,
    NotificationsChangedFrame,
    RoomCreatedFrame,
    RoomReadFrame,
    RoomUpdatedFrame,
)
from contracts.routing import ITEMS_FOR_OFFLINE, room_key, user_key
from contracts.shapes import (
    CHANGE_KINDS,
    EXCERPT_LENGTH,
    Attachment,
    Facts,
    ItemKind,
    NotificationLevel,
    Poll,
    Quote,
    Reaction,
    Room,
    RoomItem,
    Version,
)


class MessagingError(Rejected):
    pass


class RoomNotFoundError(MessagingError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such room")


class NotParticipantError(MessagingError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("not a member of this room")


class ItemNotFoundError(MessagingError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such item in this room")


class NotAnItemError(MessagingError):
    """A ``seq`` that names a change entry, or a deleted item, where a message or announcement is needed."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("invalid data", {path: reason})


class ContentError(MessagingError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__("invalid data", {path: reason})


class MentionError(MessagingError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__("invalid data", {path: reason})


class NotAllowedError(MessagingError):
    """Editing someone else's message, or deleting it without being the room's creator."""

    code = "forbidden"


class UnchangeableError(MessagingError):
    """An announcement edited or deleted, a deleted message edited, an edit too late, an emoji too many."""

    code = "conflict"


# The copy of a room ---------------------------------------------------------------------------


@dataclass
class RoomCopy:
    """A room as messaging knows it from the rooms worker's events (``room_version``: the latest applied)."""

    id: str
    name: str
    image_url: str | None
    participant_ids: list[str]
    created_by: str
    created_at: datetime
    meetup_id: str | None = None
    names: dict[str, str] = field(default_factory=dict)  # user id -> name, for announcements and pushes
    room_version: int = 0
    # user id -> the version of the ``user.profile_changed`` that set their name in ``names``: an older
    # rename, or a name a rooms event carries (resolved at some earlier time), never overwrites it.
    name_versions: dict[str, int] = field(default_factory=dict)

    def view(self, last_seq: int) -> Room:
        return Room(
            id=self.id,
            name=self.name,
            image_url=self.image_url,
            participant_ids=list(self.participant_ids),
            created_by=self.created_by,
            created_at=self.created_at,
            last_seq=last_seq,
        )


def readable(copy: RoomCopy | None, user_id: str) -> RoomCopy:
    """The room, for a participant; the error never carries its content."""
    if copy is None:
        raise RoomNotFoundError()
    if user_id not in copy.participant_ids:
        raise NotParticipantError()
    return copy


def copy_room(copy: RoomCopy | None, room: RoomInfo, names: dict[str, str], version: int) -> RoomCopy | None:
    """The copy after a rooms event at ``version``, or None when the copy is as new already."""
    if copy is not None and copy.room_version >= version:
        return None
    previous, versions = (copy.names, copy.name_versions) if copy else ({}, {})
    # A name set by the user's own event stays: the one a rooms event carries may be older.
    known = previous | names | {uid: previous[uid] for uid in versions if uid in previous}
    return RoomCopy(
        **room.model_dump(exclude={"created_at"}),
        created_at=room.created_at,
        names={uid: known[uid] for uid in room.participant_ids if uid in known},
        room_version=version,
        name_versions={uid: versions[uid] for uid in room.participant_ids if uid in versions},
    )


def rename_user(copy: RoomCopy, user_id: str, name: str, version: int) -> bool:
    """A participant's name as of their profile's ``version``; False when there is nothing to change
    (an older rename, applied late, included)."""
    if user_id not in copy.participant_ids or copy.name_versions.get(user_id, 0) >= version:
        return False
    copy.names[user_id] = name
    copy.name_versions[user_id] = version
    return True


def names_in(event: RoomCreated | MemberJoined | MemberLeft | RoomUpdated) -> dict[str, str]:
    if isinstance(event, RoomCreated):
        return event.names
    if isinstance(event, MemberJoined):
        return {event.user_id: event.user_name, event.invited_by: event.invited_by_name}
    return {}


# Items ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mentions:
    """Whom a new message mentions (``user_ids``, as sent), and whether it mentions the whole room,
    allowed in rooms of at most ``room_max`` members."""

    user_ids: tuple[str, ...] = ()
    room: bool = False
    room_max: int = 50


def send_message(
    copy: RoomCopy | None,
    sender_id: str,
    content: str,
    item_id: str,
    seq: int,
    now: datetime,
    reply_to: Quote | None = None,
    mentions: Mentions = Mentions(),
    attachments: tuple[Attachment, ...] = (),
) -> Fact:
    """A message at ``seq``, from a participant; sending moves the sender's read mark to it: ``room.read``
    to the sender, riding on the room's delivery (every gateway holding their connections gets it).
    Those it mentions are members of the room (duplicates dropped); ``@room`` only in a small room.
    Its text may be empty only when it has attachments (checked by the media worker, which owns them)."""
    copy = readable(copy, sender_id)
    if not content and not attachments:
        raise ContentError("data.content", "must be 1-4000 characters")
    strangers = [uid for uid in dict.fromkeys(mentions.user_ids) if uid not in copy.participant_ids]
    if strangers:
        raise MentionError("data.mentions", "not members of this room: " + ", ".join(strangers[:10]))
    if mentions.room and len(copy.participant_ids) > mentions.room_max:
        raise MentionError("data.mentions_room", f"only in rooms of at most {mentions.room_max} members")
    fact = _item(
        copy,
        "message",
        sender_id,
        content,
        item_id,
        seq,
        now,
        reply_to=reply_to,
        mentions=list(dict.fromkeys(mentions.user_ids)),
        mentions_room=mentions.room,
        attachments=list(attachments),
    )
    read = Send(user_key(sender_id), "room.read", RoomReadFrame(room_id=copy.id, last_read_seq=seq))
    [to_room] = fact.sends
    return replace(fact, sends=(replace(to_room, riders=(read,)),))  # one broker message for both


def announce(
    copy: RoomCopy,
    content: str,
    item_id: str,
    seq: int,
    now: datetime,
    newcomers: tuple[str, ...] = (),
    facts: Facts | None = None,
) -> Fact:
    """An announcement at ``seq``, with its ``facts`` beside its text. Newcomers get it through their
    own key too: their gateway may not have bound the room yet (a gateway drops the second copy)."""
    fact = _item(copy, "announcement", None, content, item_id, seq, now, facts=facts)
    added = fact.sends[0].data
    return Fact(
        fact.type,
        fact.aggregate_id,
        fact.payload,
        (*fact.sends, *(Send(user_key(uid), "room.item_added", added) for uid in newcomers)),
    )


def _item(
    copy: RoomCopy,
    kind: ItemKind,
    sender_id: str | None,
    content: str,
    item_id: str,
    seq: int,
    now: datetime,
    reply_to: Quote | None = None,
    mentions: list[str] | None = None,
    mentions_room: bool = False,
    attachments: list[Attachment] | None = None,
    facts: Facts | None = None,
) -> Fact:
    item = RoomItem(
        id=item_id,
        room_id=copy.id,
        seq=seq,
        kind=kind,
        sender_id=sender_id,
        content=content,
        sent_at=now,
        reply_to=reply_to,
        mentions=mentions or [],
        mentions_room=mentions_room,
        attachments=attachments or [],
        facts=facts,
    )
    payload = ItemAdded(
        item=item,
        room_name=copy.name,
        sender_name=copy.names.get(sender_id) if sender_id else None,
        participant_ids=list(copy.participant_ids),
    )
    return Fact(
        "room.item_added", copy.id, payload, (Send(room_key(copy.id), "room.item_added", ItemAddedFrame(item=item)),)
    )


def routed_for_pushes(fact: Fact, offline: set[str]) -> Fact:
    """``fact``, a new item, routed also under ``ITEMS_FOR_OFFLINE`` when some of its recipients
    (``offline``: those with no open connection) may need a push: the notifications worker takes
    only those items, so a conversation among connected people never reaches it."""
    return replace(fact, also=(ITEMS_FOR_OFFLINE,)) if offline else fact


def latest_activity_first(
    rooms: list[tuple[RoomCopy, RoomItem | None]], limit: int
) -> list[tuple[RoomCopy, RoomItem | None]]:
    """``list_rooms``' rooms, each with its last item: the ``limit`` latest by the last item's
    ``sent_at``, else the room's ``created_at``, latest first."""
    return sorted(rooms, key=lambda room: room[1].sent_at if room[1] else room[0].created_at, reverse=True)[:limit]


@dataclass(frozen=True)
class Page:
    """Which items ``get_room_items`` reads: ``ascending`` from ``after``, else newest before ``before``."""

    after: int
    before: int | None
    limit: int
    ascending: bool


def page(after_seq: int | None, before_seq: int | None, limit: int) -> Page:
    return Page(after=after_seq or 0, before=before_seq, limit=limit, ascending=after_seq is not None)


# Changes: edits, deletes, reactions -------------------------------------------------------------

MAX_REACTIONS = 20  # distinct emojis on one item


def is_change(item: RoomItem) -> bool:
    return item.kind in CHANGE_KINDS


def target(item: RoomItem | None, path: str = "data.seq") -> RoomItem:
    """The message or announcement a request names by its ``seq`` (``path``)."""
    if item is None:
        raise ItemNotFoundError()
    if is_change(item):
        raise NotAnItemError(path, "names a change entry, not a message or announcement")
    return item


def quote(original: RoomItem) -> Quote:
    """What a reply carries of ``original`` (as it now is); a deleted one cannot be answered."""
    if original.deleted_at is not None:
        raise NotAnItemError("data.reply_to", "the item is deleted")
    return Quote(
        id=original.id, seq=original.seq, sender_id=original.sender_id, excerpt=original.content[:EXCERPT_LENGTH]
    )


@dataclass(frozen=True)
class Draft:
    """A change decided on, before it is numbered: its kind, and an edit's text or a reaction's emoji."""

    kind: ItemKind
    content: str = ""
    emoji: str | None = None


def edit(item: RoomItem, user_id: str, content: str, now: datetime, window: timedelta) -> Draft | None:
    """A new text for the sender's own message, within ``window`` of sending it; None: the same text."""
    if item.kind == "announcement":
        raise UnchangeableError("an announcement cannot be edited")
    if item.sender_id != user_id:
        raise NotAllowedError("only its sender may edit a message")
    if item.deleted_at is not None:
        raise UnchangeableError("the message is deleted")
    if now - item.sent_at > window:
        raise UnchangeableError(f"a message can be edited only within {int(window.total_seconds())} seconds")
    return None if content == item.content else Draft("edit", content=content)


def delete(copy: RoomCopy, item: RoomItem, user_id: str) -> Draft | None:
    """A message deleted by its sender, or by the room's creator; None: deleted already."""
    if item.kind == "announcement":
        raise UnchangeableError("an announcement cannot be deleted")
    if user_id not in (item.sender_id, copy.created_by):
        raise NotAllowedError("only its sender or the room's creator may delete a message")
    return None if item.deleted_at is not None else Draft("delete")


def react(item: RoomItem, user_id: str, emoji: str) -> Draft | None:
    """The user's ``emoji`` on the item; None: they hold it already."""
    held = _holders(item, emoji)
    if held is not None and user_id in held:
        return None
    if held is None and len(item.reactions) >= MAX_REACTIONS:
        raise UnchangeableError(f"an item holds at most {MAX_REACTIONS} different emojis")
    return Draft("reaction_added", emoji=emoji)


def unreact(item: RoomItem, user_id: str, emoji: str) -> Draft | None:
    """The user's ``emoji`` taken off the item; None: they do not hold it."""
    held = _holders(item, emoji)
    return Draft("reaction_removed", emoji=emoji) if held is not None and user_id in held else None


def _holders(item: RoomItem, emoji: str) -> list[str] | None:
    if item.deleted_at is not None:
        raise NotAnItemError("data.seq", "the item is deleted")
    return next((reaction.user_ids for reaction in item.reactions if reaction.emoji == emoji), None)


def change(
    copy: RoomCopy | None,
    user_id: str,
    item: RoomItem,
    draft: Draft,
    replies: list[RoomItem],
    entry_id: str,
    seq: int,
    now: datetime,
) -> Fact:
    """The change entry at ``seq`` and ``room.item_changed``: the item as it now is, and each of its
    ``replies`` (as they are) whose quote the change alters, each with the entry, to the room."""
    copy = readable(copy, user_id)
    entry = RoomItem(
        id=entry_id,
        room_id=copy.id,
        seq=seq,
        kind=draft.kind,
        sender_id=user_id,
        content=draft.content,
        sent_at=now,
        target_seq=item.seq,
        emoji=draft.emoji,
    )
    after = applied(item, entry)
    requoted = [new for reply in replies if (new := requote(reply, draft.kind)) is not None]
    payload = ItemChanged(
        item=after, change=entry, participant_ids=list(copy.participant_ids), quoting=[r.seq for r in requoted]
    )
    frames = (ItemChangedFrame(item=shown, change=entry) for shown in (after, *requoted))
    return Fact(
        "room.item_changed", copy.id, payload, tuple(Send(room_key(copy.id), "room.item_changed", f) for f in frames)
    )


def applied(item: RoomItem, change: RoomItem | Change) -> RoomItem:
    """``item`` with one more change made (in ``seq`` order); nothing changes a deleted item, and a
    reaction beyond ``MAX_REACTIONS`` emojis is left out (two made at once by two processes)."""
    if item.deleted_at is not None:
        return item
    if change.kind == "edit":
        return item.model_copy(update={"content": change.content, "edited_at": change.sent_at})
    if change.kind == "delete":
        return tombstone(item, change.sent_at)
    reactions = {reaction.emoji: list(reaction.user_ids) for reaction in item.reactions}
    emoji, user_id = change.emoji or "", change.sender_id or ""
    if change.kind == "reaction_added" and user_id not in reactions.get(emoji, []):
        if emoji in reactions or len(reactions) < MAX_REACTIONS:
            reactions.setdefault(emoji, []).append(user_id)
    elif change.kind == "reaction_removed" and user_id in reactions.get(emoji, []):
        reactions[emoji].remove(user_id)
    kept = [Reaction(emoji=emoji, user_ids=users) for emoji, users in reactions.items() if users]
    return item.model_copy(update={"reactions": kept})


def tombstone(item: RoomItem, at: datetime) -> RoomItem:
    """What is left of a deleted message: who sent it and when, no text, nothing attached."""
    return item.model_copy(
        update={
            "content": "",
            "reply_to": None,
            "mentions": [],
            "mentions_room": False,
            "reactions": [],
            "edited_at": None,
            "deleted_at": at,
            "attachments": [],  # the media worker deletes their files (PROTOCOL.md, Photos and files)
        }
    )


def requote(reply: RoomItem, kind: ItemKind) -> RoomItem | None:
    """``reply`` once the item it quotes was edited or deleted (``kind``); None when its quote stays."""
    quoted = reply.reply_to
    if quoted is None or kind not in ("edit", "delete") or quoted.deleted or (kind == "edit" and quoted.edited):
        return None
    new = {"edited": True} if kind == "edit" else {"deleted": True, "excerpt": ""}
    return reply.model_copy(update={"reply_to": quoted.model_copy(update=new)})


@dataclass
class Change:
    """A change entry as the state of the item it changed keeps it."""

    seq: int
    kind: ItemKind
    sender_id: str | None
    sent_at: datetime
    content: str = ""  # an edit's text, until the item is deleted
    emoji: str | None = None


@dataclass
class ItemState:
    """What changes made of an item (the projection ``apply_changes``; its id: ``state_id``): its
    change entries in ``seq`` order, and, for a reply, what became of the item it quotes. Kept as
    entries, not as a result, so applying them in any order, or twice, gives the same state."""

    id: str
    room_id: str
    seq: int
    changes: list[Change] = field(default_factory=list)
    quote_edited: bool = False
    quote_deleted: bool = False


def state_id(room_id: str, seq: int) -> str:
    return f"{room_id}\x1f{seq}"


def new_state(room_id: str, seq: int) -> ItemState:
    return ItemState(id=state_id(room_id, seq), room_id=room_id, seq=seq)


def record(state: ItemState, entry: RoomItem) -> bool:
    """Keep the change ``entry`` (of the item ``state`` is of); False when it was kept already. A
    delete erases the text of every edit, those that come later (out of order) included."""
    if any(kept.seq == entry.seq for kept in state.changes):
        return False
    deleted = entry.kind == "delete" or any(kept.kind == "delete" for kept in state.changes)
    content = entry.content if entry.kind == "edit" and not deleted else ""
    state.changes.append(Change(entry.seq, entry.kind, entry.sender_id, entry.sent_at, content, entry.emoji))
    state.changes.sort(key=lambda kept: kept.seq)
    if entry.kind == "delete":
        for kept in state.changes:
            kept.content = ""
    return True


def record_quote(state: ItemState, kind: ItemKind) -> bool:
    """The item a reply quotes was edited or deleted (``kind``); False when that was known already."""
    if kind == "edit" and not state.quote_edited:
        state.quote_edited = True
        return True
    if kind == "delete" and not state.quote_deleted:
        state.quote_deleted = True
        return True
    return False


def shown(item: RoomItem, state: ItemState | None) -> RoomItem:
    """An item as clients see it: every change made (a change entry is shown as it was recorded)."""
    if state is None or is_change(item):
        return item
    for kept in state.changes:
        item = applied(item, kept)
    if state.quote_edited and item.reply_to is not None:
        item = requote(item, "edit") or item
    if state.quote_deleted and item.reply_to is not None:
        item = requote(item, "delete") or item
    return item


def unrecorded(state: ItemState, entries: list[RoomItem]) -> list[RoomItem]:
    """Of an item's change ``entries``, those its state does not hold yet."""
    recorded = {kept.seq for kept in state.changes}
    return [entry for entry in entries if entry.seq not in recorded]


def targets_of(items: list[RoomItem]) -> list[int]:
    """The ``seq`` of each item the change entries among ``items`` changed, not itself among them."""
    present = {item.seq for item in items}
    return sorted({item.target_seq for item in items if item.target_seq is not None} - present)


def history(original: RoomItem, state: ItemState | None) -> list[Version]:
    """A message's texts, oldest first (``original``: as sent); none once it is deleted."""
    if original.deleted_at is not None or (state and any(kept.kind == "delete" for kept in state.changes)):
        return []
    edits = (
        [Version(content=kept.content, at=kept.sent_at) for kept in state.changes if kept.kind == "edit"]
        if state
        else []
    )
    return [Version(content=original.content, at=original.sent_at), *edits]


def erase(value: Any, item: RoomItem, at: str) -> Any:
    """``value`` (a stored entry or event as JSON) with every trace of the deleted ``item``'s text
    gone: the item itself made a tombstone, its edits' text, the excerpts quoting it. Tombstones, as
    ``tombstone``, keep only who sent it and when (``at``: when it was deleted, as JSON has it)."""
    if isinstance(value, list):
        return [erase(element, item, at) for element in value]
    if not isinstance(value, dict):
        return value
    found = {key: erase(element, item, at) for key, element in value.items()}
    if found.get("room_id") == item.room_id:
        if found.get("id") == item.id and "content" in found:
            found |= {"content": "", "reply_to": None, "mentions": [], "mentions_room": False, "reactions": []}
            found |= {"attachments": []} if "attachments" in found else {}
            found |= {"edited_at": None, "deleted_at": found.get("deleted_at") or at}
        elif found.get("target_seq") == item.seq and found.get("kind") == "edit":
            found["content"] = ""
    quoted = found.get("reply_to")
    if isinstance(quoted, dict) and quoted.get("id") == item.id:
        found["reply_to"] = quoted | {"excerpt": "", "deleted": True}
    return found


# Read marks -----------------------------------------------------------------------------------


@dataclass
class ReadMark:
    """A user's explicit read mark in a room. Their own messages move it too: the mark in effect is
    the later of this and their latest message (``in_effect``), so a send writes nothing more."""

    id: str
    room_id: str
    user_id: str
    seq: int = 0
    notifications: NotificationLevel = "all"  # which of the room's items push the user


def in_effect(mark: int, own_latest: int) -> int:
    return max(mark, own_latest)


def missed_after(read: int, delivered: int | None, since: datetime) -> tuple[int, datetime | None]:
    """Where a room's missed items start, for a user gone offline: after their read mark and after
    the latest item a connection of theirs sent them (``delivered``; then at any time), or, when no
    connection sent one, after the mark and at or after ``since``."""
    if delivered is None:
        return read, since
    return max(read, delivered), None


def missed(items: list[RoomItem], user_id: str) -> list[RoomItem]:
    """Of a room's items after the user's read mark, in ``seq`` order, those the user has not read:
    after their own latest message (sending moves the sender's mark) and not theirs. Change entries
    and deleted messages are never missed."""
    own = max((item.seq for item in items if item.sender_id == user_id and item.kind == "message"), default=0)
    return [
        item
        for item in items
        if item.seq > own and item.sender_id != user_id and not is_change(item) and item.deleted_at is None
    ]


def unread(last_seq: int, read: int, others: int) -> int:
    """Messages from others after the mark in effect ``read`` up to the room's last message or
    announcement (``last_seq``), from the room's numbers alone: ``seq`` has no gaps, and none of the
    user's own messages comes after ``read`` (``in_effect``), so they are the entries in between less
    the ``others`` (announcements and change entries, which never count)."""
    return max(last_seq - read, 0) - others


def mark_read(mark: ReadMark, own_latest: int, seq: int | None, last_seq: int) -> list[Fact]:
    """Move the mark to ``seq`` (or the latest item); it never moves backwards."""
    target = last_seq if seq is None else min(seq, last_seq)
    return _move(mark, in_effect(mark.seq, own_latest), target)


def welcome(mark: ReadMark, last_seq: int) -> list[Fact]:
    """A new member has read up to the room's latest item before the announcement of their arrival
    (a returning member keeps the later of that and their old mark)."""
    return _move(mark, mark.seq, last_seq)


def set_notifications(mark: ReadMark, level: NotificationLevel) -> list[Fact]:
    """The user's notification level in the room; told to their connections only when it changes."""
    if mark.notifications == level:
        return []
    mark.notifications = level
    payload = NotificationsSet(room_id=mark.room_id, user_id=mark.user_id, level=level)
    frame = NotificationsChangedFrame(room_id=mark.room_id, level=level)
    return [
        Fact(
            "room.notifications_set",
            mark.id,
            payload,
            (Send(user_key(mark.user_id), "room.notifications_changed", frame),),
        )
    ]


def _move(mark: ReadMark, current: int, target: int) -> list[Fact]:
    if target <= current:
        return []
    mark.seq = target
    payload = RoomRead(room_id=mark.room_id, user_id=mark.user_id, last_read_seq=target)
    frame = RoomReadFrame(room_id=mark.room_id, last_read_seq=target)
    return [Fact("room.read", mark.id, payload, (Send(user_key(mark.user_id), "room.read", frame),))]


# What members see of rooms' events --------------------------------------------------------------


def room_sends(
    type: str, payload: RoomCreated | MemberJoined | MemberLeft | RoomUpdated, room: Room
) -> tuple[Send, ...]:
    """The client events a rooms event makes, with the room as messaging sees it (``last_seq``)."""
    if isinstance(payload, RoomCreated):
        return tuple(Send(user_key(uid), type, RoomCreatedFrame(room=room)) for uid in room.participant_ids)
    if isinstance(payload, MemberJoined):
        joined = MemberJoinedFrame(room_id=room.id, user_id=payload.user_id, invited_by=payload.invited_by, room=room)
        return (Send(room_key(room.id), type, joined), Send(user_key(payload.user_id), type, joined))
    if isinstance(payload, MemberLeft):
        left = MemberLeftFrame(room_id=room.id, user_id=payload.user_id)
        return (Send(room_key(room.id), type, left), Send(user_key(payload.user_id), type, left))
    return (Send(room_key(room.id), type, RoomUpdatedFrame(room=room)),)


def newcomers(payload: RoomCreated | MemberJoined | MemberLeft | RoomUpdated) -> tuple[str, ...]:
    if isinstance(payload, RoomCreated):
        return tuple(payload.room.participant_ids)
    if isinstance(payload, MemberJoined):
        return (payload.user_id,)
    return ()


# What each announcement says. Users are named by name, never by id. ----------------------------


def _when(value: datetime, time_zone: str = "UTC") -> str:
    """A time as people read it where the meetup is lived: ``Mon 14 Dec 2026, 19:00 CET``."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):  # checked when the meetup was made: this machine lacks it
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%a %d %b %Y, %H:%M %Z")


def room_created(event: RoomCreated) -> str:
    return f"{event.names.get(event.room.created_by, 'Someone')} created the room {event.room.name}"


def member_joined(event: MemberJoined) -> str:
    return f"{event.invited_by_name} added {event.user_name}"


def member_left(event: MemberLeft) -> str:
    return f"{event.user_name} left"


def meetup_created(event: MeetupCreated) -> str:
    meetup = event.meetup
    when = _when(meetup.takes_place_on, meetup.time_zone)
    return f"{event.organizer_name} planned {meetup.name} at {meetup.location} on {when}"


def meetup_moved(event: MeetupMoved) -> str:
    meetup = event.meetup
    if event.field == "takes_place_on":
        return f"{meetup.name} moved to {_when(meetup.takes_place_on, meetup.time_zone)}"
    return f"{meetup.name} moved to {meetup.location}"


def meetup_cancelled(event: MeetupCancelled) -> str:
    meetup = event.meetup
    return f"{event.cancelled_by_name} cancelled {meetup.name} ({_when(meetup.takes_place_on, meetup.time_zone)})"


def _choice(poll: Poll, choice: str) -> str:
    """A choice as people read it: a reschedule poll's choices are times."""
    return _when(parse_time(choice)) if poll.poll_type == "reschedule" else choice


def poll_created(event: PollCreated) -> str:
    choices = ", ".join(_choice(event.poll, choice) for choice in event.poll.choices)
    return f"{event.creator_name} started a poll: {event.poll.description} ({choices})"


def poll_closed(event: PollClosed) -> str:
    if event.winner is None:
        return f"Poll closed without votes: {event.poll.description}"
    return f"Poll closed: {_sentence(event.poll.description)} Chosen: {_choice(event.poll, event.winner)}"


def _sentence(text: str) -> str:
    """``text`` ending as a sentence does: a question keeps its mark, the rest gets a full stop."""
    return text if text.endswith((".", "?", "!", "…")) else f"{text}."


def room_announcement(payload: RoomCreated | MemberJoined | MemberLeft | RoomUpdated) -> str | None:
    if isinstance(payload, RoomCreated):
        return room_created(payload)
    if isinstance(payload, MemberJoined):
        return member_joined(payload)
    if isinstance(payload, MemberLeft):
        return member_left(payload)
    return room_renamed(payload)


def room_renamed(event: RoomUpdated) -> str | None:
    """A rename, said by whom (a new image, or an event from before renames were announced: None)."""
    if event.renamed_by_name is None or event.old_name == event.room.name:
        return None
    return f"{event.renamed_by_name} renamed the room to {event.room.name}"


# What each announcement says, as data: its facts (PROTOCOL.md, Calendars and reminders). -------

Announced = RoomCreated | MemberJoined | MemberLeft | RoomUpdated | MeetupCreated | MeetupMoved | MeetupCancelled
Polled = PollCreated | PollClosed


def facts_of(event: Announced | Polled) -> Facts:
    """The facts of the announcement of ``event``, names and times (ISO instants) as data."""
    if isinstance(event, RoomCreated):
        by = event.room.created_by
        return Facts(kind="room_created", by_id=by, by_name=event.names.get(by), room_name=event.room.name)
    if isinstance(event, MemberJoined):
        return Facts(
            kind="member_joined",
            by_id=event.invited_by,
            by_name=event.invited_by_name,
            user_id=event.user_id,
            user_name=event.user_name,
        )
    if isinstance(event, MemberLeft):
        return Facts(kind="member_left", user_id=event.user_id, user_name=event.user_name)
    if isinstance(event, RoomUpdated):
        return Facts(
            kind="room_renamed",
            by_id=event.renamed_by,
            by_name=event.renamed_by_name,
            room_name=event.room.name,
            old_room_name=event.old_name,
        )
    if isinstance(event, PollCreated | PollClosed):
        return _poll_facts(event)
    return _meetup_facts(event)


def _meetup_facts(event: MeetupCreated | MeetupMoved | MeetupCancelled) -> Facts:
    meetup = event.meetup
    said = Facts(
        kind="meetup_created",
        meetup_id=meetup.id,
        meetup_name=meetup.name,
        location=meetup.location,
        takes_place_on=meetup.takes_place_on,
        ends_on=meetup.ends_on,
        time_zone=meetup.time_zone,
    )
    if isinstance(event, MeetupCreated):
        return said.model_copy(update={"by_id": meetup.organizer_id, "by_name": event.organizer_name})
    if isinstance(event, MeetupMoved):
        moved = "takes_place_on" if event.field == "takes_place_on" else "location"
        return said.model_copy(update={"kind": "meetup_moved", "moved": moved})
    return said.model_copy(
        update={"kind": "meetup_cancelled", "by_id": event.cancelled_by, "by_name": event.cancelled_by_name}
    )


def _poll_facts(event: PollCreated | PollClosed) -> Facts:
    poll = event.poll
    instants = poll.poll_type == "reschedule"
    choices = [format_time(parse_time(choice)) if instants else choice for choice in poll.choices]
    said = Facts(
        kind="poll_created",
        meetup_id=poll.meetup_id,
        poll_id=poll.id,
        poll_type=poll.poll_type,
        question=poll.description,
        choices=choices,
    )
    if isinstance(event, PollCreated):
        return said.model_copy(update={"by_id": poll.creator_id, "by_name": event.creator_name})
    chosen = None if event.winner is None else format_time(parse_time(event.winner)) if instants else event.winner
    return said.model_copy(update={"kind": "poll_closed", "chosen": chosen})
