"""Users: profiles, presence, invites and device sessions, sans-I/O."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.common import Shape
from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import (
    ConnectionClosed,
    ConnectionOpened,
    InviteChanged,
    InviteRecord,
    PresenceChanged,
    ProfileChanged,
    SessionChanged,
    SessionRecord,
)
from contracts.frames import PresenceChangedFrame, SessionRevokedFrame, UserUpdatedFrame
from contracts.requests import UserList
from contracts.routing import room_key, user_key
from contracts.shapes import DeviceSession, Invite, InviteStatus, User


class UsersError(Rejected):
    pass


class UnknownUserError(UsersError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("unknown user")


class TooManyConnectionsError(UsersError):
    code = "rate_limited"

    def __init__(self) -> None:
        super().__init__("too many connections")


class InviteNotFoundError(UsersError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such invite")


class InviteEndedError(UsersError):
    code = "forbidden"

    def __init__(self, why: str) -> None:
        super().__init__(f"this invite {why}")


class InviteUsedUpError(UsersError):
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("this invite has been used up")


class BadCursorError(UsersError):
    code = "bad_request"

    def __init__(self) -> None:
        super().__init__("invalid data", {"data.cursor": "not a cursor list_users gave"})


class SessionEndedError(UsersError):
    code = "unauthenticated"

    def __init__(self) -> None:
        super().__init__("this session has ended: sign in again")


class UnknownSessionError(UsersError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such session")


@dataclass
class UserState:
    id: str
    name: str
    image_url: str | None
    email: str = ""
    connections: list[str] = field(default_factory=list)  # "<gateway_id>/<connection_id>"
    # Room id -> the latest item's seq a connection closed since the user came online had sent on.
    delivered: dict[str, int] = field(default_factory=dict)

    def view(self) -> User:
        return User(id=self.id, name=self.name, image_url=self.image_url)


def sign_in(
    state: UserState | None, profile: User, email: str, rooms: Sequence[str] = ()
) -> tuple[UserState, list[Fact]]:
    """The profile comes from the last sign-in or token presented; those who share one of ``rooms``
    with the user (the user's rooms, as the replica knows them), and the user, learn of a new user
    or a changed name or picture (not of a changed email: nobody else sees it)."""
    if state is None:
        state = UserState(id=profile.id, name=profile.name, image_url=profile.image_url, email=email)
    elif (state.name, state.image_url, state.email) == (profile.name, profile.image_url, email):
        return state, []
    elif state.view() == profile:
        state.email = email
        return state, [Fact("user.profile_changed", state.id, ProfileChanged(user=profile))]
    else:
        state.name, state.image_url, state.email = profile.name, profile.image_url, email
    updated = sharers(state.id, rooms, "user.updated", UserUpdatedFrame(user=state.view()))
    return state, [Fact("user.profile_changed", state.id, ProfileChanged(user=state.view()), updated)]


def connect(state: UserState, connection: str, limit: int, rooms: Sequence[str] = ()) -> list[Fact]:
    """A connection opened on some gateway; the first one makes the user online (told to those who
    share one of ``rooms`` with the user). A user has at most ``limit`` connections open, over every
    gateway."""
    if connection in state.connections:
        return []
    if len(state.connections) >= limit:
        raise TooManyConnectionsError()
    state.connections.append(connection)
    opened = Fact("user.connection_opened", state.id, ConnectionOpened(connection=connection))
    return [opened, *(_presence(state, rooms, online=True) if len(state.connections) == 1 else [])]


def disconnect(
    state: UserState, connection: str, delivered: Mapping[str, int] | None = None, rooms: Sequence[str] = ()
) -> list[Fact]:
    """A connection closed, having sent its client the items ``delivered`` names (per room, the
    latest ``seq``); the last one makes the user offline (told to those who share one of ``rooms``),
    saying what all of them had sent."""
    if connection not in state.connections:
        return []
    state.connections.remove(connection)
    for room_id, seq in (delivered or {}).items():
        state.delivered[room_id] = max(seq, state.delivered.get(room_id, 0))
    closed = Fact("user.connection_closed", state.id, ConnectionClosed(connection=connection))
    if state.connections:
        return [closed]
    seen, state.delivered = state.delivered, {}
    return [closed, *_presence(state, rooms, online=False, delivered=seen)]


def gateways(states: list[UserState]) -> set[str]:
    """The gateways holding these users' connections."""
    return {connection.split("/", 1)[0] for state in states for connection in state.connections}


def gateway_gone(state: UserState, gateway_id: str, rooms: Sequence[str] = ()) -> list[Fact]:
    """A gateway died with connections open: they are closed now (the last one makes the user offline)."""
    facts: list[Fact] = []
    for connection in [c for c in state.connections if c.split("/", 1)[0] == gateway_id]:
        facts += disconnect(state, connection, rooms=rooms)
    return facts


def _presence(
    state: UserState, rooms: Sequence[str], online: bool, delivered: dict[str, int] | None = None
) -> list[Fact]:
    payload = PresenceChanged(user_id=state.id, online=online, delivered=delivered or {})
    frame = PresenceChangedFrame(user_id=state.id, online=online)
    return [Fact("user.presence_changed", state.id, payload, sharers(state.id, rooms, "presence.changed", frame))]


def sharers(user_id: str, rooms: Sequence[str], event: str, frame: Shape) -> tuple[Send, ...]:
    """A client event about a user for those who share a room with them, and the user: one send per
    room (gateways bind the rooms of the members connected to them), with the user's own key riding
    on each; with no room, to the user alone. The sends of one fact make one delivery (they share
    its id), so a connection reached through several rooms gets it once."""
    own = Send(user_key(user_id), event, frame)
    return tuple(Send(room_key(room_id), event, frame, riders=(own,)) for room_id in rooms) or (own,)


def introduce(newcomer: UserState, room_id: str) -> tuple[Send, ...]:
    """A user joined a room: its members learn who they are and whether they are online (they may
    have shared no room before, so were told of neither)."""
    online = PresenceChangedFrame(user_id=newcomer.id, online=bool(newcomer.connections))
    return (
        Send(room_key(room_id), "user.updated", UserUpdatedFrame(user=newcomer.view())),
        Send(room_key(room_id), "presence.changed", online),
    )


# Who shares a room with whom --------------------------------------------------------------------


@dataclass(frozen=True)
class RoomMembers:
    """A room's members as the rooms worker's event of ``version`` (the room's) said."""

    room_id: str
    member_ids: frozenset[str]
    version: int


@dataclass
class Memberships:
    """A replica of who is in which room, kept from the rooms worker's events: per room, the newest
    version wins, so events applied late, twice or out of order change nothing they should not."""

    rooms: dict[str, RoomMembers] = field(default_factory=dict)
    _rooms_of: dict[str, set[str]] = field(default_factory=dict, repr=False)  # user id -> their room ids

    def merge(self, said: Iterable[RoomMembers]) -> None:
        for room in said:
            if (known := self.rooms.get(room.room_id)) is not None and known.version >= room.version:
                continue
            for user_id in known.member_ids - room.member_ids if known else ():
                self._rooms_of[user_id].discard(room.room_id)
                if not self._rooms_of[user_id]:
                    del self._rooms_of[user_id]
            for user_id in room.member_ids:
                self._rooms_of.setdefault(user_id, set()).add(room.room_id)
            self.rooms[room.room_id] = room

    def rooms_of(self, user_id: str) -> list[str]:
        """The user's rooms, in id order."""
        return sorted(self._rooms_of.get(user_id, ()))

    def sharing(self, user_id: str) -> set[str]:
        """Who shares a room with the user, the user included."""
        return {user_id}.union(*(self.rooms[room_id].member_ids for room_id in self._rooms_of.get(user_id, ())))


# The directory ----------------------------------------------------------------------------------


def by_name(users: list[User]) -> list[User]:
    """Version 1's directory: everyone by name (code point order), then id."""
    return sorted(users, key=lambda user: (user.name, user.id))


def page(found: list[User], limit: int) -> UserList:
    """A page of ``list_users`` from ``found``, the users listed after its cursor (one more than
    ``limit`` when there are more)."""
    shown = found[:limit]
    more = len(found) > limit
    return UserList(users=shown, next_cursor=cursor_after(listed_as(shown[-1])) if more else None)


def listed_as(user: User) -> str:
    """A user's place in the directory: by name (code point order), then id. The separator sorts
    below any character but NUL, which the Mongo stand-in cuts strings at (a name holding U+0000 or
    U+0001 may be listed out of place, nothing worse)."""
    return f"{user.name}\x01{user.id}"


def folded(text: str) -> str:
    """What a search compares: case folded (``Straße`` holds ``SS``)."""
    return text.casefold()


def holding(query: str) -> str:
    """A regular expression matching folded names that hold ``query``: only the characters that are
    special to every regular expression dialect are escaped."""
    return "".join(f"\\{c}" if c in SPECIAL else c for c in folded(query))


SPECIAL = frozenset("\\.^$|?*+()[]{}")


def cursor_after(place: str) -> str:
    """An opaque cursor for the page after the directory place ``place``."""
    return base64.urlsafe_b64encode(place.encode()).decode().rstrip("=")


def place_of(cursor: str) -> str:
    """The directory place a cursor of ``cursor_after`` stands for; ``BadCursorError`` for anything else."""
    try:
        place = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursorError() from None
    if "\x01" not in place or cursor_after(place) != cursor:
        raise BadCursorError()
    return place


def existing(state: UserState | None) -> UserState:
    if state is None:
        raise UnknownUserError()
    return state


def known_as(new_id: str, legacy: UserState | None, email: str) -> str:
    """The id a Google account signs in as: ``google:<sub>``, unless it signed in before ids were
    namespaced (its bare ``sub``, holding the same email): existing data keeps its users."""
    if legacy is not None and email and legacy.email.lower() == email.lower():
        return legacy.id
    return new_id


# Invites ------------------------------------------------------------------------------------------


@dataclass
class InviteState:
    id: str  # the code
    created_by: str
    created_at: datetime
    expires_at: datetime
    max_uses: int
    uses: int = 0
    revoked: bool = False
    redeemed_by: list[str] = field(default_factory=list)

    def status(self, now: datetime) -> InviteStatus:
        if self.revoked:
            return "revoked"
        if self.uses >= self.max_uses:
            return "used_up"
        return "expired" if now >= self.expires_at else "active"

    def view(self, now: datetime, base_url: str) -> Invite:
        return Invite(
            code=self.id,
            link=f"{base_url}/invite/{self.id}",
            created_at=self.created_at,
            expires_at=self.expires_at,
            max_uses=self.max_uses,
            uses=self.uses,
            status=self.status(now),
        )

    def record(self) -> InviteRecord:
        return InviteRecord(
            code=self.id,
            created_by=self.created_by,
            created_at=self.created_at,
            expires_at=self.expires_at,
            max_uses=self.max_uses,
            uses=self.uses,
            revoked=self.revoked,
        )


def create_invite(code: str, by: str, now: datetime, max_uses: int, expires_in: int) -> tuple[InviteState, list[Fact]]:
    state = InviteState(code, by, now, now + timedelta(seconds=expires_in), max_uses)
    return state, [Fact("user.invite_created", code, InviteChanged(invite=state.record()))]


def redeem(state: InviteState | None, user_id: str, now: datetime) -> list[Fact]:
    """A newcomer joins by the invite: one use each, while it is active. Counted by the invite's
    conditional write, so of two newcomers racing for its last use one wins."""
    if state is None:
        raise InviteNotFoundError()
    if user_id in state.redeemed_by:
        return []  # the same sign-in again
    match state.status(now):
        case "revoked":
            raise InviteEndedError("was revoked")
        case "used_up":
            raise InviteUsedUpError()
        case "expired":
            raise InviteEndedError("has expired")
    state.uses += 1
    state.redeemed_by.append(user_id)
    return [Fact("user.invite_redeemed", state.id, InviteChanged(invite=state.record(), user_id=user_id))]


def revoke_invite(state: InviteState | None, by: str) -> list[Fact]:
    """Only its maker revokes an invite (anyone else's is not_found); revoking it again changes nothing."""
    if state is None or state.created_by != by:
        raise InviteNotFoundError()
    if state.revoked:
        return []
    state.revoked = True
    return [Fact("user.invite_revoked", state.id, InviteChanged(invite=state.record()))]


# Device sessions ----------------------------------------------------------------------------------


@dataclass
class SessionState:
    id: str
    user_id: str
    device: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked: bool = False

    def live(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    def view(self) -> DeviceSession:
        return DeviceSession(
            id=self.id,
            device=self.device,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            expires_at=self.expires_at,
        )

    def record(self) -> SessionRecord:
        return SessionRecord(
            id=self.id,
            user_id=self.user_id,
            device=self.device,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            expires_at=self.expires_at,
            revoked=self.revoked,
        )


def start_session(
    state: SessionState | None, id: str, user_id: str, device: str, now: datetime, expires_at: datetime
) -> tuple[SessionState, list[Fact]]:
    """A sign-in with Google, dev login or an invite starts a session for the device (the same
    sign-in again starts nothing more; a session id is never another user's)."""
    if state is not None:
        if state.user_id != user_id:
            raise SessionEndedError()
        return state, []
    state = SessionState(id, user_id, device, now, now, expires_at)
    return state, [Fact("user.session_started", id, SessionChanged(session=state.record()))]


# A session's use and sliding expiry are written at most once an hour: a device that reconnects
# often (a phone between networks, a storm after a restart) signs in with reads alone.
RENEWED_EVERY = timedelta(hours=1)


def renew_session(state: SessionState | None, user_id: str, now: datetime, expires_at: datetime) -> list[Fact]:
    """A sign-in with the session's token: refused unless it is this user's live session; else the
    session lives on until ``expires_at`` (sliding expiry) and was last used now, both kept to within
    ``RENEWED_EVERY``: nothing changes when they would move less than that."""
    if state is None or state.user_id != user_id or not state.live(now):
        raise SessionEndedError()
    if now - state.last_used_at < RENEWED_EVERY and expires_at - state.expires_at < RENEWED_EVERY:
        return []
    state.last_used_at = now
    state.expires_at = max(state.expires_at, expires_at)
    return [Fact("user.session_renewed", state.id, SessionChanged(session=state.record()))]


def revoke_session(state: SessionState | None, user_id: str, now: datetime) -> list[Fact]:
    """Sign a device out: its token is refused from now on, and its open connections are told
    (``session.revoked``, to the user's connections) and closed by the gateways."""
    if state is None or state.user_id != user_id:
        raise UnknownSessionError()
    if not state.live(now):
        return []
    state.revoked = True
    told = Send(user_key(user_id), "session.revoked", SessionRevokedFrame(session_id=state.id))
    return [Fact("user.session_revoked", state.id, SessionChanged(session=state.record()), (told,))]


def signed_in(sessions: list[SessionState], now: datetime) -> list[DeviceSession]:
    """A user's live sessions, the most recently used first."""
    live = sorted((s for s in sessions if s.live(now)), key=lambda s: (s.last_used_at, s.id), reverse=True)
    return [s.view() for s in live]
