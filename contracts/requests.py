"""Every request of PROTOCOL.md: its data, its reply, its owner and whether it is a command."""

from __future__ import annotations

import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
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
    MessageText,
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
    Attachment,
    DeviceSession,
    Invite,
    Meetup,
    NotificationLevel,
    Platform,
    Poll,
    PollType,
    Room,
    RoomItem,
    RoomSummary,
    Rsvp,
    User,
    Version,
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


MAX_MENTIONS = 50
MAX_ATTACHMENTS = 10
MAX_EMOJI_BYTES = 32


def _emoji(value: str) -> str:
    if len(value.encode()) > MAX_EMOJI_BYTES:
        raise ValueError(f"must be at most {MAX_EMOJI_BYTES} bytes of UTF-8")
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValueError("must not hold white space or control characters")
    return value


Emoji = Annotated[StrictStr, StringConstraints(min_length=1), AfterValidator(_emoji), Field(examples=["👍"])]


class SendMessage(Input):
    """``content`` may be left out or empty only with ``attachments`` (v1.2, Photos and files)."""

    room_id: Id
    # Added in v1.2 (PROTOCOL.md, Photos and files): upload ids, in the order shown. Before
    # ``content``, whose check reads it.
    attachments: Annotated[list[Id], Field(max_length=MAX_ATTACHMENTS)] = []
    content: Annotated[MessageText, Field(validate_default=True)] = ""
    # Added in v1.2 (PROTOCOL.md, Everyday chat).
    reply_to: PositiveSeq | None = None
    mentions: Annotated[list[Id], Field(max_length=MAX_MENTIONS)] = []
    mentions_room: StrictBool = False

    @field_validator("attachments")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an upload may be attached once")
        return value

    @field_validator("content")
    @classmethod
    def _text_or_attachments(cls, value: str, info: ValidationInfo) -> str:
        if not value and not info.data.get("attachments"):
            raise ValueError("must be 1-4000 characters")  # version 1's rule, without attachments
        return value


class EditMessage(Input):
    room_id: Id
    seq: PositiveSeq
    content: Content


class DeleteMessage(Input):
    room_id: Id
    seq: PositiveSeq


class ChangeReaction(Input):
    """``add_reaction`` and ``remove_reaction``."""

    room_id: Id
    seq: PositiveSeq
    emoji: Emoji


class SetRoomNotifications(Input):
    room_id: Id
    level: NotificationLevel


class Typing(Input):
    room_id: Id
    active: StrictBool = True


class GetItemHistory(Input):
    room_id: Id
    seq: PositiveSeq


class ItemHistory(Shape):
    versions: list[Version]


class ItemReply(Shape):
    item: RoomItem


# Meetups ------------------------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str:
    """An IANA time zone this machine knows (its names only: never a path)."""
    if value not in _zones():
        raise ValueError("must be an IANA time zone name, like Europe/Berlin")
    return value


TimeZone = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_time_zone),
    Field(examples=["Europe/Berlin"]),
]


class CreateMeetup(Input):
    name: Name
    location: Location
    takes_place_on: Annotated[Time, AfterValidator(_in_future), Field(description="strictly in the future")]
    attendee_ids: Ids
    image_url: Url | None = None
    # Added in v1.2 (PROTOCOL.md, Calendars and reminders).
    ends_on: Annotated[Time | None, Field(description="after takes_place_on; default two hours after it")] = None
    time_zone: TimeZone = "UTC"

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, ends_on: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("takes_place_on")
        if ends_on is not None and starts is not None and ends_on <= starts:
            raise ValueError("must be after takes_place_on")
        return ends_on


class CancelMeetup(Input):
    meetup_id: Id


class SetReminders(Input):
    enabled: StrictBool


class CalendarFeed(Shape):
    """``get_calendar_feed``, ``reset_calendar_feed``: the user's secret feed address."""

    url: str
    webcal_url: str
    reminders: bool


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


# Photos and files (added in v1.2) ----------------------------------------------------------------


def _file_name(value: str) -> str:
    """A name to show and to download as: never a path, never control characters."""
    if value in (".", "..") or any(c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise ValueError("must not hold / or \\, control characters, or be . or ..")
    return value


FileName = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_file_name),
    Field(examples=["beach.jpg"]),
]


class CreateUpload(Input):
    room_id: Id
    name: FileName
    content_type: Annotated[StrictStr, StringConstraints(min_length=1, max_length=127), Field(examples=["image/jpeg"])]
    size: Annotated[StrictInt, Field(ge=1, examples=[2_400_000])]


class UploadSlot(Shape):
    upload_id: str
    url: str
    method: Literal["PUT"] = "PUT"
    expires_at: Time


class CompleteUpload(Input):
    upload_id: Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-f]{32}$"), Field(examples=["5f0c" * 8])]


class UploadCompleted(Shape):
    attachment: Attachment


class GetAttachmentLinks(Input):
    room_id: Id
    seq: PositiveSeq


class AttachmentLink(Shape):
    id: str
    url: str
    thumbnails: dict[str, str] = {}  # width in pixels -> link


class AttachmentLinks(Shape):
    links: list[AttachmentLink]


class GetRoomItems(Input):
    room_id: Id
    before_seq: PositiveSeq | None = None
    after_seq: Seq | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 50
    with_changes: StrictBool = False  # added in v1.2: change entries too, and their targets


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
    targets: list[RoomItem] | None = None  # added in v1.2: with ``with_changes`` only


class MeetupList(Shape):
    meetups: list[Meetup]


MAX_USERS_LISTED = 500
USERS_LISTED = 100  # a page of ``list_users`` without ``limit``
UserQuery = Annotated[
    StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Field(examples=["ann"])
]
Cursor = Annotated[StrictStr, StringConstraints(min_length=1, max_length=2048), Field(examples=["QW5uAWFubi0x"])]


class ListUsers(Input):
    """``list_users`` (added in v1.2: ``query``, ``limit``, ``cursor``). With none of them (v1's
    ``{}``), every user; with any, a page of at most ``limit`` users after ``cursor`` (a previous
    page's ``next_cursor``) whose name holds ``query`` (case-insensitive)."""

    query: UserQuery | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_USERS_LISTED)] | None = None
    cursor: Cursor | None = None

    @property
    def paged(self) -> bool:
        return (self.query, self.limit, self.cursor) != (None, None, None)


class UserList(Shape):
    users: list[User]
    next_cursor: str | None = None  # added in v1.2: paging only; the next page's ``cursor``, None at the end


class OnlineUsers(Shape):
    user_ids: list[str]


# The table ----------------------------------------------------------------------------------

Owner = Literal["gateway", "rooms", "messaging", "meetups", "polls", "notifications", "users", "media"]


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
    "edit_message": Spec(EditMessage, ItemReply, "messaging", command=True),
    "delete_message": Spec(DeleteMessage, ItemReply, "messaging", command=True),
    "create_upload": Spec(CreateUpload, UploadSlot, "media", command=True),
    "complete_upload": Spec(CompleteUpload, UploadCompleted, "media", command=True),
    "get_attachment_links": Spec(GetAttachmentLinks, AttachmentLinks, "messaging", command=False),
    "add_reaction": Spec(ChangeReaction, ItemReply, "messaging", command=True),
    "remove_reaction": Spec(ChangeReaction, ItemReply, "messaging", command=True),
    "set_room_notifications": Spec(SetRoomNotifications, Empty, "messaging", command=True),
    "typing": Spec(Typing, Empty, "gateway", command=False),
    "get_item_history": Spec(GetItemHistory, ItemHistory, "messaging", command=False),
    "create_meetup": Spec(CreateMeetup, MeetupReply, "meetups", command=True),
    "change_rsvp": Spec(ChangeRsvp, Empty, "meetups", command=True),
    "change_meetup_image": Spec(ChangeMeetupImage, Empty, "meetups", command=True),
    "cancel_meetup": Spec(CancelMeetup, Empty, "meetups", command=True),
    "reset_calendar_feed": Spec(Empty, CalendarFeed, "meetups", command=True),
    "set_reminders": Spec(SetReminders, Empty, "meetups", command=True),
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
    "get_calendar_feed": Spec(Empty, CalendarFeed, "meetups", command=False),
    "list_users": Spec(ListUsers, UserList, "users", command=False),
    "list_online_users": Spec(Empty, OnlineUsers, "users", command=False),
    "create_invite": Spec(CreateInvite, InviteReply, "users", command=True),
    "revoke_invite": Spec(RevokeInvite, Empty, "users", command=True),
    "list_invites": Spec(Empty, InviteList, "users", command=False),
    "revoke_session": Spec(RevokeSession, Empty, "users", command=True),
    "revoke_sessions": Spec(RevokeSessions, RevokedSessions, "users", command=True),
    "list_sessions": Spec(Empty, SessionList, "users", command=False),
}
