"""Payloads of the domain events workers publish on ``<ns>.events`` (the internal contract).

Every payload carries what its consumers need (names for announcements, the aggregate as it now is),
so consumers never read another worker's storage and a replay of the log rebuilds the same state.
Consumers that keep a replica apply a snapshot only when its ``version`` is newer.

Names: one class per event type, named after it: the part after the dot in CamelCase, with the
aggregate in front when that part is a bare verb (``room.created`` -> ``RoomCreated``,
``room.item_added`` -> ``ItemAdded``, ``poll.vote_cast`` -> ``VoteCast``). What a client receives
for the same fact is ``contracts.frames``' class of the same base name plus ``Frame``
(``RoomCreatedFrame``), so no name means two things and no fact has two names. Other classes here
(``RoomInfo``) are shapes inside payloads, not events.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.common import Shape, Time
from contracts.shapes import Attachment, Meetup, NotificationLevel, Poll, ReminderKind, RoomFields, RoomItem, User

# rooms --------------------------------------------------------------------------------------


class RoomInfo(RoomFields):
    """A room as the rooms worker owns it: who is in it and what it is called, and the meetup it
    belongs to. The client's ``Room`` has ``last_seq`` instead, which messaging owns."""

    meetup_id: str | None = None


class RoomCreated(Shape):
    """``room.created``"""

    room: RoomInfo
    names: dict[str, str]  # participant id -> name


class MemberJoined(Shape):
    """``room.member_joined``"""

    room: RoomInfo
    user_id: str
    user_name: str
    invited_by: str
    invited_by_name: str


class MemberLeft(Shape):
    """``room.member_left``: ``room`` is without the leaver."""

    room: RoomInfo
    user_id: str
    user_name: str


class RoomUpdated(Shape):
    """``room.updated``: renamed or given a new image. Added in v1.2, for a rename only: who renamed
    it (``renamed_by``, ``renamed_by_name``) and its name before (``old_name``), for the announcement."""

    room: RoomInfo
    renamed_by: str | None = None
    renamed_by_name: str | None = None
    old_name: str | None = None


# messaging ----------------------------------------------------------------------------------


class RoomRead(Shape):
    """``room.read``: a user's read mark in a room moved forward (sending a message moves the
    sender's too, without an event of its own: the ``room.item_added`` says so)."""

    room_id: str
    user_id: str
    last_read_seq: int


class ItemAdded(Shape):
    """``room.item_added``: with what a push needs (room name, sender name, who is in the room)."""

    item: RoomItem
    room_name: str
    sender_name: str | None
    participant_ids: list[str]

    @property
    def recipients(self) -> list[str]:
        """Who may be told of the item: the room as it was when the item was added, minus its sender
        (so a user who left before it gets nothing)."""
        return [user_id for user_id in dict.fromkeys(self.participant_ids) if user_id != self.item.sender_id]


class ItemChanged(Shape):
    """``room.item_changed`` (added in v1.2): a change entry (``change``: an edit, a delete, a
    reaction added or removed) and the item it changed as it now is (``item``), with what
    consumers need (who is in the room). ``quoting`` lists the ``seq`` of the room's replies to the
    item whose quote the change altered (an edit marks them edited, a delete erases their excerpt)."""

    item: RoomItem
    change: RoomItem
    participant_ids: list[str]
    quoting: list[int] = Field(default_factory=list)


class NotificationsSet(Shape):
    """``room.notifications_set`` (added in v1.2): a user's notification level in a room."""

    room_id: str
    user_id: str
    level: NotificationLevel


# users --------------------------------------------------------------------------------------


class ProfileChanged(Shape):
    """``user.profile_changed``"""

    user: User


class ConnectionOpened(Shape):
    """``user.connection_opened``: ``<gateway_id>/<connection_id>``."""

    connection: str


class ConnectionClosed(Shape):
    """``user.connection_closed``: ``<gateway_id>/<connection_id>``."""

    connection: str


class PresenceChanged(Shape):
    """``user.presence_changed``: first connection opened, or last one closed. Going offline,
    ``delivered`` is per room the ``seq`` of the latest ``room.item_added`` any of the user's
    connections sent its client since they came online (what came after is pushed)."""

    user_id: str
    online: bool
    delivered: dict[str, int] = Field(default_factory=dict)


class InviteRecord(Shape):
    """An invite as the users worker keeps it (``created_by`` the operator's ``boochat`` for
    ``boochat invite``)."""

    code: str
    created_by: str
    created_at: Time
    expires_at: Time
    max_uses: int
    uses: int
    revoked: bool


class InviteChanged(Shape):
    """``user.invite_created``, ``user.invite_redeemed`` (by ``user_id``), ``user.invite_revoked``."""

    invite: InviteRecord
    user_id: str | None = None


class SessionRecord(Shape):
    """A device session as the users worker keeps it."""

    id: str
    user_id: str
    device: str
    created_at: Time
    last_used_at: Time
    expires_at: Time
    revoked: bool


class SessionChanged(Shape):
    """``user.session_started``, ``user.session_renewed`` (signed in with its token), ``user.session_revoked``."""

    session: SessionRecord


# meetups ------------------------------------------------------------------------------------


class MeetupCreated(Shape):
    """``meetup.created``: ``meetup.alerts`` is empty (alerts are per recipient). ``sequence`` (added
    in v1.2, in each meetup event): the calendars' SEQUENCE, one more at each move or cancellation."""

    meetup: Meetup
    created_at: Time
    organizer_name: str
    sequence: int = 0


class MeetupUpdated(Shape):
    """``meetup.updated``: anything of the meetup changed (RSVPs, image, attendees, its polls); no
    announcement. Every change of a meetup is one of these four events (``meetup.cancelled`` since
    v1.2), with the whole meetup."""

    meetup: Meetup
    created_at: Time
    sequence: int = 0


class MeetupMoved(Shape):
    """``meetup.moved``: a closed poll moved it in time or place (announced in its room)."""

    meetup: Meetup
    created_at: Time
    poll_id: str
    field: str  # "takes_place_on" or "location"
    value: str
    sequence: int = 0


class MeetupCancelled(Shape):
    """``meetup.cancelled`` (added in v1.2): its organizer cancelled it (announced in its room)."""

    meetup: Meetup
    created_at: Time
    sequence: int
    cancelled_by: str
    cancelled_by_name: str


class MeetupReminderDue(Shape):
    """``meetup.reminder_due`` (added in v1.2): a reminder (``kind``) for ``user_ids``, ``lead_seconds``
    before the meetup starts; ``text`` says when and where, in the meetup's time zone (the push's
    body). ``meetup.alerts`` is empty."""

    meetup: Meetup
    kind: ReminderKind
    lead_seconds: int
    user_ids: list[str]
    text: str


class CalendarFeedReset(Shape):
    """``meetup.calendar_feed_reset`` (added in v1.2): the user's feed has a new address (the event
    does not carry it)."""

    user_id: str


class RemindersSet(Shape):
    """``meetup.reminders_set`` (added in v1.2): the user turned reminders on or off."""

    user_id: str
    enabled: bool


# polls --------------------------------------------------------------------------------------


class PollCreated(Shape):
    """``poll.created``"""

    poll: Poll
    room_id: str
    creator_name: str


class VoteCast(Shape):
    """``poll.vote_cast``: ``poll`` as it is after the whole command (closed, if this vote closed it)."""

    poll: Poll
    room_id: str
    user_id: str
    choice_index: int


class ParticipantRemoved(Shape):
    """``poll.participant_removed``: a participant left the meetup's room."""

    poll: Poll
    room_id: str
    user_id: str


class PollClosed(Shape):
    """``poll.closed``: ``winner`` is the winning choice, or None when nobody voted."""

    poll: Poll
    room_id: str
    winner: str | None


# media --------------------------------------------------------------------------------------


class UploadRecord(Shape):
    """An upload as the media worker keeps it. ``status``: ``waiting`` for its bytes, ``ready``,
    ``failed`` (``reason``), ``deleted``; ``size`` is the declared size until it is checked."""

    id: str
    owner_id: str
    room_id: str
    name: str
    status: Literal["waiting", "ready", "failed", "deleted"]
    size: int
    attachment: Attachment | None = None
    item_id: str | None = None
    reason: str | None = None


class UploadChanged(Shape):
    """``upload.created``, ``upload.checked``, ``upload.attached``, ``upload.deleted``: the upload as it is now."""

    upload: UploadRecord
