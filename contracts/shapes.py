"""The shapes of PROTOCOL.md that Boochat sends: users, rooms, items, meetups, polls, alerts."""

from __future__ import annotations

from typing import Literal

from contracts.common import Shape, Time

ItemKind = Literal["message", "announcement", "edit", "delete", "reaction_added", "reaction_removed"]
# Items people see; the other kinds are change entries (PROTOCOL.md, Everyday chat), never unread,
# never pushed, never a room's last item, sent only to clients that ask for them.
SHOWN_KINDS: tuple[ItemKind, ...] = ("message", "announcement")
CHANGE_KINDS: tuple[ItemKind, ...] = ("edit", "delete", "reaction_added", "reaction_removed")
NotificationLevel = Literal["all", "mentions", "none"]
Rsvp = Literal["not_responded", "yes", "no", "maybe"]
PollType = Literal["generic", "reschedule", "relocate"]
PollStatus = Literal["open", "closed"]
AlertType = Literal["pending_poll", "pending_reschedule_poll", "pending_relocation_poll"]
Platform = Literal["android", "ios", "web"]
ReminderKind = Literal["reminder", "nudge"]
AttachmentKind = Literal["image", "video", "audio", "file"]
AttachmentStatus = Literal["processing", "ready", "failed"]
InviteStatus = Literal["active", "expired", "used_up", "revoked"]
AnnouncementKind = Literal[
    "room_created",
    "member_joined",
    "member_left",
    "room_renamed",
    "meetup_created",
    "meetup_moved",
    "meetup_cancelled",
    "poll_created",
    "poll_closed",
]

ALERT_OF_POLL: dict[str, AlertType] = {
    "generic": "pending_poll",
    "reschedule": "pending_reschedule_poll",
    "relocate": "pending_relocation_poll",
}


class User(Shape):
    id: str
    name: str
    image_url: str | None = None


class RoomFields(Shape):
    """What the rooms worker owns of a room, shared by the client's ``Room`` and the events' ``RoomInfo``."""

    id: str
    name: str
    image_url: str | None
    participant_ids: list[str]
    created_by: str
    created_at: Time


class Room(RoomFields):
    last_seq: int


class Quote(Shape):
    """What a reply carries of the item it answers, as it was when the reply was sent (added in v1.2)."""

    id: str
    seq: int
    sender_id: str | None
    excerpt: str  # at most EXCERPT_LENGTH characters; "" once the original is deleted
    edited: bool = False
    deleted: bool = False


class Reaction(Shape):
    """One emoji on an item and who holds it, in the order they reacted (added in v1.2)."""

    emoji: str
    user_ids: list[str]


EXCERPT_LENGTH = 200


class Attachment(Shape):
    """A checked upload, as an item carries it (PROTOCOL.md, Photos and files). Its links are asked
    for apart (``get_attachment_links``): they expire, and go to members only."""

    id: str
    name: str
    content_type: str
    kind: AttachmentKind
    size: int
    status: AttachmentStatus = "ready"
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None  # a data: URI of a tiny image, images only
    thumbnails: list[int] = []  # widths, in pixels, of the thumbnails made


class Facts(Shape):
    """What an announcement says, as data beside its text (added in v1.2, PROTOCOL.md, Calendars and
    reminders): clients word it themselves and show its times in the viewer's time zone. Fields that
    do not apply to ``kind`` are null (or empty)."""

    kind: AnnouncementKind
    by_id: str | None = None  # who did it: the room's creator, the inviter, the organizer, ...
    by_name: str | None = None
    user_id: str | None = None  # member_joined, member_left: who came or went
    user_name: str | None = None
    room_name: str | None = None  # room_created, room_renamed (the new name)
    old_room_name: str | None = None  # room_renamed
    meetup_id: str | None = None  # meetup_*; poll_* name the meetup by id only
    meetup_name: str | None = None
    location: str | None = None
    takes_place_on: Time | None = None
    ends_on: Time | None = None
    time_zone: str | None = None  # the meetup's IANA time zone
    moved: Literal["takes_place_on", "location"] | None = None  # meetup_moved: what moved
    poll_id: str | None = None
    poll_type: PollType | None = None
    question: str | None = None
    choices: list[str] = []  # a reschedule poll's choices are instants (ISO 8601, UTC)
    chosen: str | None = None  # poll_closed: the winning choice, null when nobody voted


class RoomItem(Shape):
    id: str
    room_id: str
    seq: int
    kind: ItemKind
    sender_id: str | None
    content: str
    sent_at: Time
    # Added in v1.2 (PROTOCOL.md, Everyday chat): null, false or empty where they do not apply.
    reply_to: Quote | None = None
    mentions: list[str] = []
    mentions_room: bool = False
    reactions: list[Reaction] = []
    edited_at: Time | None = None
    deleted_at: Time | None = None
    target_seq: int | None = None  # change entries only: the item changed
    emoji: str | None = None  # reaction_added, reaction_removed only
    attachments: list[Attachment] = []  # added in v1.2 (Photos and files)
    facts: Facts | None = None  # announcements only, added in v1.2 (Calendars and reminders)


class Version(Shape):
    """A message's text as it was from ``at`` (``get_item_history``)."""

    content: str
    at: Time


class RoomSummary(Shape):
    room: Room
    last_item: RoomItem | None
    last_read_seq: int
    unread_count: int
    mention_count: int = 0  # added in v1.2: unread items mentioning the user or the room
    notifications: NotificationLevel = "all"  # added in v1.2: set_room_notifications


class Attendee(Shape):
    user_id: str
    rsvp: Rsvp


class Vote(Shape):
    user_id: str
    choice_index: int


class Poll(Shape):
    id: str
    meetup_id: str
    poll_type: PollType
    description: str
    choices: list[str]
    participant_ids: list[str]
    votes: list[Vote]
    status: PollStatus
    creator_id: str
    created_at: Time
    winner_index: int | None


class Alert(Shape):
    type: AlertType
    meetup_id: str
    poll_id: str


class Meetup(Shape):
    id: str
    room_id: str
    name: str
    organizer_id: str
    location: str
    takes_place_on: Time
    image_url: str | None
    attendees: list[Attendee]
    polls: list[Poll]
    alerts: list[Alert]
    # Added in v1.2 (PROTOCOL.md, Calendars and reminders). ``ends_on`` is null only in what was
    # stored before (the meetup then ends two hours after it starts).
    ends_on: Time | None = None
    time_zone: str = "UTC"  # an IANA name
    cancelled_at: Time | None = None


class Invite(Shape):
    """An invite link: whoever opens ``link`` before ``expires_at``, while ``uses`` < ``max_uses``,
    picks a name and joins (``authenticate`` with ``invite``)."""

    code: str
    link: str
    created_at: Time
    expires_at: Time
    max_uses: int
    uses: int
    status: InviteStatus


class DeviceSession(Shape):
    """A device signed in: its session token renews itself at each sign-in with it."""

    id: str
    device: str
    created_at: Time
    last_used_at: Time
    expires_at: Time
