"""Every request of PROTOCOL.md: its data, its reply, its owner and whether it is a command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.common import (
    Content,
    Description,
    Id,
    Input,
    Location,
    Name,
    PositiveSeq,
    Seq,
    Shape,
    Time,
    Url,
    format_time,
    parse_time,
)
from contracts.shapes import (
    DeviceSession,
    Invite,
    Meetup,
    Platform,
    Poll,
    PollType,
    Room,
    RoomItem,
    RoomSummary,
    Rsvp,
    User,
)

Ids = Annotated[list[Id], Field(max_length=1000)]
Token = Annotated[StrictStr, StringConstraints(min_length=1, max_length=8192)]
InviteCode = Annotated[StrictStr, StringConstraints(min_length=1, max_length=128), Field(examples=["Xq3v9TbK2mPz"])]
Device = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_INVITE_USES = 1000
MAX_INVITE_SECONDS = 90 * 24 * 3600
DeviceToken = Annotated[StrictStr, StringConstraints(min_length=1, max_length=4096)]
Choice = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _in_future(value: datetime) -> datetime:
    if value <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return value


class Empty(Input):
    """A request or reply that carries nothing: ``{}``."""


# Authentication ------------------------------------------------------------------------------


class DevUser(Input):
    id: Id
    name: Name
    email: Annotated[StrictStr, StringConstraints(max_length=320)] = ""
    image_url: Url | None = None


class Authenticate(Input):
    token: Token | None = None
    google_id_token: Token | None = None
    dev_user: DevUser | None = None
    invite: InviteCode | None = None  # joining by an invite link: with ``name``, the new user's
    name: Name | None = None
    device: Device | None = None  # what the device calls itself (else its User-Agent), in list_sessions

    @model_validator(mode="after")
    def _exactly_one(self) -> Authenticate:
        given = [self.token, self.google_id_token, self.dev_user, self.invite]
        if sum(value is not None for value in given) != 1:
            raise ValueError("exactly one of token, google_id_token, dev_user, invite is required")
        if (self.invite is None) != (self.name is None):
            raise ValueError("name goes with invite, and only with it")
        return self


class Authenticated(Shape):
    user: User
    token: str
    expires_at: Time
    session_id: str | None = None  # the device session of ``token`` (list_sessions); null: none


# Rooms --------------------------------------------------------------------------------------


class CreateRoom(Input):
    name: Name
    image_url: Url | None = None
    participant_ids: Ids


class InviteToRoom(Input):
    room_id: Id
    user_id: Id


class LeaveRoom(Input):
    room_id: Id


class MarkRoomRead(Input):
    room_id: Id
    seq: Seq | None = None


class ChangeRoomImage(Input):
    room_id: Id
    image_url: Url


class RenameRoom(Input):
    room_id: Id
    name: Name


class RoomReply(Shape):
    room: Room


class ReadMark(Shape):
    last_read_seq: int


# Messages -----------------------------------------------------------------------------------


class SendMessage(Input):
    room_id: Id
    content: Content


class ItemReply(Shape):
    item: RoomItem


# Meetups ------------------------------------------------------------------------------------


class CreateMeetup(Input):
    name: Name
    location: Location
    takes_place_on: Annotated[Time, AfterValidator(_in_future), Field(description="strictly in the future")]
    attendee_ids: Ids
    image_url: Url | None = None


class ChangeRsvp(Input):
    meetup_id: Id
    rsvp: Rsvp


class ChangeMeetupImage(Input):
    meetup_id: Id
    image_url: Url


class MeetupReply(Shape):
    meetup: Meetup


# Polls --------------------------------------------------------------------------------------


class CreatePoll(Input):
    meetup_id: Id
    poll_type: PollType
    description: Description
    choices: Annotated[list[Choice], Field(min_length=2, max_length=10)]

    @field_validator("choices")
    @classmethod
    def _choices(cls, choices: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("poll_type") == "reschedule":
            instants = [_in_future(parse_time(choice)) for choice in choices]
            if len(set(instants)) != len(instants):
                raise ValueError("choices must be distinct instants")
            return [format_time(t) for t in instants]  # stored normalised to UTC, like every client time
        if len(set(choices)) != len(choices):
            raise ValueError("choices must be distinct")
        return choices


class VotePoll(Input):
    poll_id: Id
    choice_index: Annotated[StrictInt, Field(ge=0)]


class ClosePoll(Input):
    poll_id: Id


class PollReply(Shape):
    poll: Poll


# Devices ------------------------------------------------------------------------------------


class RegisterDevice(Input):
    token: DeviceToken
    platform: Platform


class UnregisterDevice(Input):
    token: DeviceToken


# Invites and device sessions -----------------------------------------------------------------


class CreateInvite(Input):
    max_uses: Annotated[StrictInt, Field(ge=1, le=MAX_INVITE_USES)] = 1
    expires_in: Annotated[StrictInt, Field(ge=60, le=MAX_INVITE_SECONDS, description="seconds")] = 7 * 24 * 3600


class RevokeInvite(Input):
    code: InviteCode


class InviteReply(Shape):
    invite: Invite


class InviteList(Shape):
    invites: list[Invite]


class RevokeSession(Input):
    session_id: Id


class RevokeSessions(Input):
    keep: Id | None = None  # this session stays signed in (the caller's own, say)


class SessionList(Shape):
    sessions: list[DeviceSession]


class RevokedSessions(Shape):
    session_ids: list[str]


# Queries ------------------------------------------------------------------------------------


class GetRoom(Input):
    room_id: Id


class GetRoomItems(Input):
    room_id: Id
    before_seq: PositiveSeq | None = None
    after_seq: Seq | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 50


class GetMeetup(Input):
    meetup_id: Id


class UserReply(Shape):
    user: User


class RoomList(Shape):
    rooms: list[RoomSummary]
    has_more: bool = False  # added in v1.1: the user is in more rooms than the answer lists


MAX_ROOMS_LISTED = 500
ROOMS_LISTED = 200  # a ``list_rooms`` without ``limit``


class ListRooms(Input):
    """``list_rooms``: the latest ``limit`` rooms (v1 sent ``{}``: it gets the default)."""

    limit: Annotated[StrictInt, Field(ge=1, le=MAX_ROOMS_LISTED)] = ROOMS_LISTED


class ItemPage(Shape):
    items: list[RoomItem]
    has_more: bool


class MeetupList(Shape):
    meetups: list[Meetup]


class UserList(Shape):
    users: list[User]


class OnlineUsers(Shape):
    user_ids: list[str]


# The table ----------------------------------------------------------------------------------

Owner = Literal["gateway", "rooms", "messaging", "meetups", "polls", "notifications", "users"]


@dataclass(frozen=True)
class Spec:
    """What PROTOCOL.md says of one request type."""

    data: type[Input]
    reply: type[Shape] | type[Input]
    owner: Owner
    command: bool


REQUESTS: dict[str, Spec] = {
    "authenticate": Spec(Authenticate, Authenticated, "gateway", command=False),
    "ping": Spec(Empty, Empty, "gateway", command=False),
    "get_me": Spec(Empty, UserReply, "users", command=False),
    "create_room": Spec(CreateRoom, RoomReply, "rooms", command=True),
    "invite_to_room": Spec(InviteToRoom, Empty, "rooms", command=True),
    "leave_room": Spec(LeaveRoom, Empty, "rooms", command=True),
    "mark_room_read": Spec(MarkRoomRead, ReadMark, "messaging", command=True),
    "change_room_image": Spec(ChangeRoomImage, Empty, "rooms", command=True),
    "rename_room": Spec(RenameRoom, Empty, "rooms", command=True),
    "send_message": Spec(SendMessage, ItemReply, "messaging", command=True),
    "create_meetup": Spec(CreateMeetup, MeetupReply, "meetups", command=True),
    "change_rsvp": Spec(ChangeRsvp, Empty, "meetups", command=True),
    "change_meetup_image": Spec(ChangeMeetupImage, Empty, "meetups", command=True),
    "create_poll": Spec(CreatePoll, PollReply, "polls", command=True),
    "vote_poll": Spec(VotePoll, Empty, "polls", command=True),
    "close_poll": Spec(ClosePoll, Empty, "polls", command=True),
    "register_device": Spec(RegisterDevice, Empty, "notifications", command=True),
    "unregister_device": Spec(UnregisterDevice, Empty, "notifications", command=True),
    "list_rooms": Spec(ListRooms, RoomList, "messaging", command=False),
    "get_room": Spec(GetRoom, RoomReply, "messaging", command=False),
    "get_room_items": Spec(GetRoomItems, ItemPage, "messaging", command=False),
    "list_meetups": Spec(Empty, MeetupList, "meetups", command=False),
    "get_meetup": Spec(GetMeetup, MeetupReply, "meetups", command=False),
    "list_users": Spec(Empty, UserList, "users", command=False),
    "list_online_users": Spec(Empty, OnlineUsers, "users", command=False),
    "create_invite": Spec(CreateInvite, InviteReply, "users", command=True),
    "revoke_invite": Spec(RevokeInvite, Empty, "users", command=True),
    "list_invites": Spec(Empty, InviteList, "users", command=False),
    "revoke_session": Spec(RevokeSession, Empty, "users", command=True),
    "revoke_sessions": Spec(RevokeSessions, RevokedSessions, "users", command=True),
    "list_sessions": Spec(Empty, SessionList, "users", command=False),
}
