"""The shapes of PROTOCOL.md that Boochat sends: users, rooms, items, meetups, polls, alerts."""

from __future__ import annotations

from typing import Literal

from contracts.common import Shape, Time

ItemKind = Literal["message", "announcement"]
Rsvp = Literal["not_responded", "yes", "no", "maybe"]
PollType = Literal["generic", "reschedule", "relocate"]
PollStatus = Literal["open", "closed"]
AlertType = Literal["pending_poll", "pending_reschedule_poll", "pending_relocation_poll"]
Platform = Literal["android", "ios", "web"]
InviteStatus = Literal["active", "expired", "used_up", "revoked"]

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


class RoomItem(Shape):
    id: str
    room_id: str
    seq: int
    kind: ItemKind
    sender_id: str | None
    content: str
    sent_at: Time


class RoomSummary(Shape):
    room: Room
    last_item: RoomItem | None
    last_read_seq: int
    unread_count: int


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
