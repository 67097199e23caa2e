"""Messaging: everything measured in ``seq``, sans-I/O. A room's timeline (messages and
announcements numbered 1, 2, 3 ... with no gaps), read marks and unread counts, decided from
messaging's own copy of each room (kept from the rooms worker's events)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from contracts.common import parse_time
from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import (
    ItemAdded,
    MeetupCreated,
    MeetupMoved,
    MemberJoined,
    MemberLeft,
    PollClosed,
    PollCreated,
    RoomCreated,
    RoomInfo,
    RoomRead,
    RoomUpdated,
)
from contracts.frames import (
    ItemAddedFrame,
    MemberJoinedFrame,
    MemberLeftFrame,
    RoomCreatedFrame,
    RoomReadFrame,
    RoomUpdatedFrame,
)
from contracts.routing import ITEMS_FOR_OFFLINE, room_key, user_key
from contracts.shapes import ItemKind, Poll, Room, RoomItem


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


def send_message(copy: RoomCopy | None, sender_id: str, content: str, item_id: str, seq: int, now: datetime) -> Fact:
    """A message at ``seq``, from a participant; sending moves the sender's read mark to it: ``room.read``
    to the sender, riding on the room's delivery (every gateway holding their connections gets it)."""
    copy = readable(copy, sender_id)
    fact = _item(copy, "message", sender_id, content, item_id, seq, now)
    read = Send(user_key(sender_id), "room.read", RoomReadFrame(room_id=copy.id, last_read_seq=seq))
    [to_room] = fact.sends
    return replace(fact, sends=(replace(to_room, riders=(read,)),))  # one broker message for both


def announce(
    copy: RoomCopy, content: str, item_id: str, seq: int, now: datetime, newcomers: tuple[str, ...] = ()
) -> Fact:
    """An announcement at ``seq``. Newcomers get it through their own key too: their gateway may not
    have bound the room yet (a gateway drops the second copy)."""
    fact = _item(copy, "announcement", None, content, item_id, seq, now)
    added = fact.sends[0].data
    return Fact(
        fact.type,
        fact.aggregate_id,
        fact.payload,
        (*fact.sends, *(Send(user_key(uid), "room.item_added", added) for uid in newcomers)),
    )


def _item(
    copy: RoomCopy, kind: ItemKind, sender_id: str | None, content: str, item_id: str, seq: int, now: datetime
) -> Fact:
    item = RoomItem(id=item_id, room_id=copy.id, seq=seq, kind=kind, sender_id=sender_id, content=content, sent_at=now)
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


# Read marks -----------------------------------------------------------------------------------


@dataclass
class ReadMark:
    """A user's explicit read mark in a room. Their own messages move it too: the mark in effect is
    the later of this and their latest message (``in_effect``), so a send writes nothing more."""

    id: str
    room_id: str
    user_id: str
    seq: int = 0


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
    after their own latest (sending moves the sender's mark) and not theirs."""
    own = max((item.seq for item in items if item.sender_id == user_id), default=0)
    return [item for item in items if item.seq > own and item.sender_id != user_id]


def unread(last_seq: int, read: int, announcements: int) -> int:
    """Messages from others after the mark in effect ``read``, from the room's numbers alone: ``seq``
    has no gaps, and none of the user's own messages comes after ``read`` (``in_effect``), so they
    are the items after it less its ``announcements`` (which never count)."""
    return max(last_seq - read, 0) - announcements


def mark_read(mark: ReadMark, own_latest: int, seq: int | None, last_seq: int) -> list[Fact]:
    """Move the mark to ``seq`` (or the latest item); it never moves backwards."""
    target = last_seq if seq is None else min(seq, last_seq)
    return _move(mark, in_effect(mark.seq, own_latest), target)


def welcome(mark: ReadMark, last_seq: int) -> list[Fact]:
    """A new member has read up to the room's latest item before the announcement of their arrival
    (a returning member keeps the later of that and their old mark)."""
    return _move(mark, mark.seq, last_seq)


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


def _when(value: datetime) -> str:
    return value.strftime("%a %d %b %Y, %H:%M UTC")


def room_created(event: RoomCreated) -> str:
    return f"{event.names.get(event.room.created_by, 'Someone')} created the room {event.room.name}"


def member_joined(event: MemberJoined) -> str:
    return f"{event.invited_by_name} added {event.user_name}"


def member_left(event: MemberLeft) -> str:
    return f"{event.user_name} left"


def meetup_created(event: MeetupCreated) -> str:
    meetup = event.meetup
    return f"{event.organizer_name} planned {meetup.name} at {meetup.location} on {_when(meetup.takes_place_on)}"


def meetup_moved(event: MeetupMoved) -> str:
    meetup = event.meetup
    if event.field == "takes_place_on":
        return f"{meetup.name} moved to {_when(meetup.takes_place_on)}"
    return f"{meetup.name} moved to {meetup.location}"


def _choice(poll: Poll, choice: str) -> str:
    """A choice as people read it: a reschedule poll's choices are times."""
    return _when(parse_time(choice)) if poll.poll_type == "reschedule" else choice


def poll_created(event: PollCreated) -> str:
    choices = ", ".join(_choice(event.poll, choice) for choice in event.poll.choices)
    return f"{event.creator_name} started a poll: {event.poll.description} ({choices})"


def poll_closed(event: PollClosed) -> str:
    if event.winner is None:
        return f"Poll closed without votes: {event.poll.description}"
    return f"Poll closed: {event.poll.description}. Chosen: {_choice(event.poll, event.winner)}"


def room_announcement(payload: RoomCreated | MemberJoined | MemberLeft | RoomUpdated) -> str | None:
    if isinstance(payload, RoomCreated):
        return room_created(payload)
    if isinstance(payload, MemberJoined):
        return member_joined(payload)
    if isinstance(payload, MemberLeft):
        return member_left(payload)
    return None  # renamed or re-imaged: no announcement
