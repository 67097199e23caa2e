"""The three server frames, the client request envelope and the client events of PROTOCOL.md.

Names: the ``data`` of the event frame a client receives is ``<Name>Frame``, ``<Name>`` being the
client event type in ``contracts.events``' CamelCase (``room.created`` -> ``RoomCreatedFrame``,
``presence.changed`` -> ``PresenceChangedFrame``): the internal payload of the same fact has the same
base name without the suffix (``events.RoomCreatedFrame``). Client events that carry the same data share
one class named for what it carries: ``MeetupFrame`` (``meetup.created``, ``meetup.updated``) and
``PollFrame`` (``poll.created``, ``poll.closed``). The wire names are PROTOCOL.md's, in ``EVENTS``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from contracts.common import Input, Shape
from contracts.errors import ErrorCode
from contracts.shapes import Meetup, NotificationLevel, Poll, ReminderKind, Room, RoomItem, User

RequestId = Annotated[str, StringConstraints(pattern=r"^[ -~]{1,64}$")]


class Request(Input):
    """Client to server."""

    type: str = Field(examples=["send_message"])
    id: RequestId = Field(examples=["5f0c9a52-3e0b-4c7e-9d7e-0d1f6c1b2a3c"])
    data: dict[str, Any]


class ErrorBody(Shape):
    code: ErrorCode
    message: str
    details: dict[str, str] | None = None


class Ok(Shape):
    type: str = "ok"
    re: str
    data: dict[str, Any]


class Error(Shape):
    type: str = "error"
    re: str | None
    error: ErrorBody


class EventFrame(Shape):
    type: str = "event"
    event: str
    data: dict[str, Any]


# Client events: the data of each ------------------------------------------------------------------


class RoomCreatedFrame(Shape):
    room: Room


class MemberJoinedFrame(Shape):
    room_id: str
    user_id: str
    invited_by: str | None
    room: Room


class MemberLeftFrame(Shape):
    room_id: str
    user_id: str


class RoomUpdatedFrame(Shape):
    room: Room


class RoomReadFrame(Shape):
    room_id: str
    last_read_seq: int


class ItemAddedFrame(Shape):
    item: RoomItem


class MeetupFrame(Shape):
    meetup: Meetup


class PollFrame(Shape):
    poll: Poll


class VoteCastFrame(Shape):
    poll_id: str
    meetup_id: str
    user_id: str
    choice_index: int


class PresenceChangedFrame(Shape):
    user_id: str
    online: bool


class UserUpdatedFrame(Shape):
    user: User


class SessionRevokedFrame(Shape):
    session_id: str


class ItemChangedFrame(Shape):
    """``room.item_changed`` (v1.2): the changed item as it now is, and the change entry."""

    item: RoomItem
    change: RoomItem


class TypingFrame(Shape):
    """``room.typing`` (v1.2)."""

    room_id: str
    user_id: str
    active: bool


class NotificationsChangedFrame(Shape):
    """``room.notifications_changed`` (v1.2)."""

    room_id: str
    level: NotificationLevel


class MeetupReminderFrame(Shape):
    """``meetup.reminder`` (v1.2): the meetup starts ``lead_seconds`` after the reminder was due."""

    meetup: Meetup
    kind: ReminderKind
    lead_seconds: int


EVENTS: dict[str, type[Shape]] = {
    "room.created": RoomCreatedFrame,
    "room.member_joined": MemberJoinedFrame,
    "room.member_left": MemberLeftFrame,
    "room.updated": RoomUpdatedFrame,
    "room.read": RoomReadFrame,
    "room.item_added": ItemAddedFrame,
    "meetup.created": MeetupFrame,
    "meetup.updated": MeetupFrame,
    "poll.created": PollFrame,
    "poll.vote_cast": VoteCastFrame,
    "poll.closed": PollFrame,
    "presence.changed": PresenceChangedFrame,
    "user.updated": UserUpdatedFrame,
    "session.revoked": SessionRevokedFrame,
    "room.item_changed": ItemChangedFrame,
    "room.typing": TypingFrame,
    "room.notifications_changed": NotificationsChangedFrame,
    "meetup.reminder": MeetupReminderFrame,
}
