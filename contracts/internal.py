"""Requests that travel between Boochat's own processes, never from clients.

They go over the same request/reply path as client requests (``Command`` to the owner's command
queue, ``Reply`` back); ``Command.user_id`` is the user on whose behalf the request is made.
"""

from __future__ import annotations

from pydantic import Field

from contracts.common import Input, Shape, Time
from contracts.envelope import AnyEvent
from contracts.errors import ErrorCode
from contracts.events import ItemAdded, RoomInfo
from contracts.requests import Empty, Spec
from contracts.shapes import Attachment, Invite, User


class SessionGrant(Input):
    """The device session a sign-in starts (or, presented by its token, renews) until ``expires_at``."""

    id: str
    device: str = ""
    expires_at: Time


class SignIn(Input):
    """Gateway -> users: a user signed in or presented a valid token; keep their profile.

    With ``session``, a device session: started, or with ``renew`` renewed (refused, unauthenticated,
    when it is not this user's live session). With ``invite``, a newcomer joins by that invite (its
    refusals: not_found, forbidden, conflict). ``legacy_id``: the id a Google account had before ids
    were namespaced (``google:<sub>``), kept while that user has the same email.
    """

    user: User
    email: str = ""
    session: SessionGrant | None = None
    renew: bool = False
    invite: str | None = None
    legacy_id: str | None = None


class SignedIn(Shape):
    """``user_id``: the id the user is known by, when it is not the one asked (``legacy_id``)."""

    user_id: str | None = None


class OperatorInvite(Input):
    """``boochat invite`` and ``boochat up`` -> users: an invite made by the operator; with
    ``only_without_users``, only while nobody has signed in yet (else ``invite`` is null)."""

    max_uses: int = 1
    expires_in: int = 7 * 24 * 3600
    only_without_users: bool = False


class OperatorInviteReply(Shape):
    invite: Invite | None


class ConnectionOpened(Input):
    """Gateway -> users: a connection of ``Command.user_id`` opened (presence)."""

    connection_id: str
    gateway_id: str


class ConnectionClosed(Input):
    """Gateway -> users: a connection of ``Command.user_id`` closed (presence). ``delivered``: per
    room, the ``seq`` of the latest ``room.item_added`` the connection sent its client (pushes are
    for what came after: ``MissedItems``)."""

    connection_id: str
    gateway_id: str
    delivered: dict[str, int] = Field(default_factory=dict)


class ResolveUsers(Input):
    """Worker -> users: which of these ids are known users, with their profiles."""

    ids: list[str]


class Users(Shape):
    users: list[User]


class UserRooms(Input):
    """Gateway -> rooms: the rooms ``Command.user_id`` is in, to bind their deliveries."""


class RoomIds(Shape):
    room_ids: list[str]


class OpenMeetupRoom(Input):
    """Meetups -> rooms: create the room of a new meetup (idempotent by ``room_id``)."""

    room_id: str
    meetup_id: str
    name: str
    image_url: str | None = None
    participant_ids: list[str]


class OpenedRoom(Shape):
    room: RoomInfo


class HandOver(Input):
    """A worker -> a worker that keeps a copy of its data (its follower), before it answers a rare
    command (a change of a room's members): apply these events now, so that what the answer promises
    holds at once in every copy. Each follower takes it as a command of its own, named for what it
    does with them. The same events reach the copy through its queues too, earlier or later:
    applying them again changes nothing."""

    events: list[AnyEvent]


class MissedItems(Input):
    """Notifications -> messaging, when ``Command.user_id`` went offline: the items that user may
    have missed the push of, because messaging routed them before its replica of presence knew.
    Those of the user's rooms that the user has not read and did not send, newest first within each
    room (messaging bounds how many), and that no connection of theirs sent them: in a room named in
    ``delivered``, those after its ``seq``; in another room, those stored at or after ``since``."""

    since: Time
    delivered: dict[str, int] = Field(default_factory=dict)


class MissedItem(Shape):
    event_id: str  # of the item's ``room.item_added``: a push is claimed per event and target
    added: ItemAdded


class Missed(Shape):
    items: list[MissedItem]


INTERNAL: dict[str, Spec] = {
    "sign_in": Spec(SignIn, SignedIn, "users", command=False),
    "operator_invite": Spec(OperatorInvite, OperatorInviteReply, "users", command=False),
    "connection_opened": Spec(ConnectionOpened, Shape, "users", command=False),
    "connection_closed": Spec(ConnectionClosed, Shape, "users", command=False),
    "resolve_users": Spec(ResolveUsers, Users, "users", command=False),
    "user_rooms": Spec(UserRooms, RoomIds, "rooms", command=False),
    "open_meetup_room": Spec(OpenMeetupRoom, OpenedRoom, "rooms", command=True),
    # Rooms hands a change of a room to each worker that keeps a copy of it, before it answers
    # (``workers/rooms/handlers.py``: FOLLOWERS). Not claimed by id: applying one twice changes nothing.
    "copy_room_changes": Spec(HandOver, Empty, "messaging", command=False),
    "follow_membership": Spec(HandOver, Empty, "meetups", command=False),
    "remove_leavers": Spec(HandOver, Empty, "polls", command=False),
    "missed_items": Spec(MissedItems, Missed, "messaging", command=False),
}


# meetups ------------------------------------------------------------------------------------


class MeetupAccess(Input):
    """Polls -> meetups: the meetup, if ``Command.user_id`` attends it (else forbidden/not_found)."""

    meetup_id: str


class MeetupAccessReply(Shape):
    meetup_id: str
    room_id: str
    organizer_id: str
    attendee_ids: list[str]


INTERNAL["meetup_access"] = Spec(MeetupAccess, MeetupAccessReply, "meetups", command=False)


class CalendarFile(Input):
    """Gateway -> meetups, for a GET of a calendar feed (``meetup_id`` None) or of one meetup's file:
    the file of the user whose feed ``token`` is. ``if_none_match``: the entity tags the client has
    (``If-None-Match``). An unknown token, or a meetup that user does not attend: not_found."""

    token: str
    meetup_id: str | None = None
    if_none_match: list[str] = Field(default_factory=list)


class CalendarText(Shape):
    """``body`` is None when one of the client's tags is still the file's ``etag`` (HTTP 304)."""

    etag: str
    body: str | None


INTERNAL["calendar_file"] = Spec(CalendarFile, CalendarText, "meetups", command=False)


# media --------------------------------------------------------------------------------------


class UploadReceived(Input):
    """Gateway -> media, once a PUT's bytes are stored: check the upload and answer its outcome."""

    upload_id: str


class UploadChecked(Shape):
    """The attachment when the upload is ready; else ``code`` (``too_large``, ``bad_request``) and
    ``reason``, and nothing of it is kept."""

    attachment: Attachment | None = None
    code: ErrorCode | None = None
    reason: str | None = None


class ClaimUploads(Input):
    """Messaging -> media, for a ``send_message`` with attachments: these uploads of ``Command.user_id``
    become ``item_id``'s (refused, bad_request naming ``data.attachments``, unless each is the
    sender's, for ``room_id``, ready, and not another item's). Claiming them again for the same item
    answers the same."""

    room_id: str
    item_id: str
    upload_ids: list[str]


class Attachments(Shape):
    attachments: list[Attachment]


class RoomAccess(Input):
    """Media -> messaging, before opening an upload slot: answered ``{}`` when ``Command.user_id`` is
    a member of the room (messaging's copy of rooms), else forbidden or not_found."""

    room_id: str


INTERNAL["room_access"] = Spec(RoomAccess, Empty, "messaging", command=False)
INTERNAL["upload_received"] = Spec(UploadReceived, UploadChecked, "media", command=False)
INTERNAL["claim_uploads"] = Spec(ClaimUploads, Attachments, "media", command=False)
