"""Messaging: a room's timeline, sans-I/O. Items are numbered 1, 2, 3 ... with no gaps: an item's
``seq`` is the timeline's next version, taken in the same conditional write that stores it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import (
    ItemAppended,
    MeetupMoved,
    MeetupOpened,
    MemberAdded,
    MemberRemoved,
    PollFinished,
    PollOpened,
    RoomOpened,
)
from contracts.frames import ItemAdded
from contracts.routing import room_key
from contracts.shapes import ItemKind, Room, RoomItem, User

RECENT_CAUSES = 200  # announcements remembered per room, so a redelivered event announces once


class MessagingError(Rejected):
    pass


class NotParticipantError(MessagingError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("not a member of this room")


@dataclass
class Timeline:
    id: str  # the room id
    last_seq: int = 0
    recent_causes: list[str] = field(default_factory=list)


def send_message(
    timeline: Timeline, room: Room, sender: User, content: str, item_id: str, now: datetime
) -> tuple[RoomItem, list[Fact]]:
    if sender.id not in room.participant_ids:
        raise NotParticipantError()
    return _append(timeline, room, "message", sender, content, item_id, now)


def announce(timeline: Timeline, room: Room, content: str, cause: str, item_id: str, now: datetime) -> list[Fact]:
    """An announcement caused by event ``cause``; none if that event was already announced."""
    if cause in timeline.recent_causes:
        return []
    timeline.recent_causes = [*timeline.recent_causes, cause][-RECENT_CAUSES:]
    return _append(timeline, room, "announcement", None, content, item_id, now)[1]


def _append(
    timeline: Timeline,
    room: Room,
    kind: ItemKind,
    sender: User | None,
    content: str,
    item_id: str,
    now: datetime,
) -> tuple[RoomItem, list[Fact]]:
    timeline.last_seq += 1
    item = RoomItem(
        id=item_id,
        room_id=timeline.id,
        seq=timeline.last_seq,
        kind=kind,
        sender_id=sender.id if sender else None,
        content=content,
        sent_at=now,
    )
    payload = ItemAppended(
        item=item,
        room_name=room.name,
        sender_name=sender.name if sender else None,
        participant_ids=list(room.participant_ids),
    )
    send = Send(room_key(timeline.id), "room.item_added", ItemAdded(item=item))
    return item, [Fact("room.item_added", timeline.id, payload, (send,))]


@dataclass(frozen=True)
class Page:
    """Which items ``get_room_items`` reads: ``ascending`` from ``after``, else newest before ``before``."""

    after: int
    before: int | None
    limit: int
    ascending: bool


def page(after_seq: int | None, before_seq: int | None, limit: int) -> Page:
    return Page(after=after_seq or 0, before=before_seq, limit=limit, ascending=after_seq is not None)


# What each announcement says. Users are named by name, never by id. ----------------------------


def _when(value: datetime) -> str:
    return value.strftime("%a %d %b %Y, %H:%M UTC")


def room_created(event: RoomOpened) -> str:
    return f"{event.names.get(event.room.created_by, 'Someone')} created the room {event.room.name}"


def member_joined(event: MemberAdded) -> str:
    return f"{event.invited_by_name} added {event.user_name}"


def member_left(event: MemberRemoved) -> str:
    return f"{event.user_name} left"


def meetup_created(event: MeetupOpened) -> str:
    meetup = event.meetup
    return f"{event.organizer_name} planned {meetup.name} at {meetup.location} on {_when(meetup.takes_place_on)}"


def meetup_moved(event: MeetupMoved) -> str:
    meetup = event.meetup
    if event.field == "takes_place_on":
        return f"{meetup.name} moved to {_when(meetup.takes_place_on)}"
    return f"{meetup.name} moved to {meetup.location}"


def poll_created(event: PollOpened) -> str:
    choices = ", ".join(event.poll.choices)
    return f"{event.creator_name} started a poll: {event.poll.description} ({choices})"


def poll_closed(event: PollFinished) -> str:
    if event.winner is None:
        return f"Poll closed without votes: {event.poll.description}"
    return f"Poll closed: {event.poll.description}. Chosen: {event.winner}"
