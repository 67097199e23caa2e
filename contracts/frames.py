"""The three server frames, the client request envelope and the client events of PROTOCOL.md."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from contracts.common import Input, Shape
from contracts.errors import ErrorCode
from contracts.shapes import Meetup, Poll, Room, RoomItem, User

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


# Client events: name -> data ----------------------------------------------------------------


class RoomCreated(Shape):
    room: Room


class MemberJoined(Shape):
    room_id: str
    user_id: str
    invited_by: str | None
    room: Room


class MemberLeft(Shape):
    room_id: str
    user_id: str


class RoomUpdated(Shape):
    room: Room


class RoomRead(Shape):
    room_id: str
    last_read_seq: int


class ItemAdded(Shape):
    item: RoomItem


class MeetupChanged(Shape):
    meetup: Meetup


class PollChanged(Shape):
    poll: Poll


class VoteCast(Shape):
    poll_id: str
    meetup_id: str
    user_id: str
    choice_index: int


class PresenceChanged(Shape):
    user_id: str
    online: bool


class UserUpdated(Shape):
    user: User


EVENTS: dict[str, type[Shape]] = {
    "room.created": RoomCreated,
    "room.member_joined": MemberJoined,
    "room.member_left": MemberLeft,
    "room.updated": RoomUpdated,
    "room.read": RoomRead,
    "room.item_added": ItemAdded,
    "meetup.created": MeetupChanged,
    "meetup.updated": MeetupChanged,
    "poll.created": PollChanged,
    "poll.vote_cast": VoteCast,
    "poll.closed": PollChanged,
    "presence.changed": PresenceChanged,
    "user.updated": UserUpdated,
}
