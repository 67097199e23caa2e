"""Rooms: who is in a room and what it is called; state and rules, sans-I/O. Commands in, facts
out, or a ``RoomsError``. What members see of these facts (client events, announcements, read
marks) is messaging's, from its copy of each room."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.envelope import Fact
from contracts.errors import Rejected
from contracts.events import MemberJoined, MemberLeft, RoomCreated, RoomInfo, RoomUpdated
from contracts.shapes import User


class RoomsError(Rejected):
    pass


class RoomNotFoundError(RoomsError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such room")


class NotParticipantError(RoomsError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("not a member of this room")


class UnknownUserError(RoomsError):
    code = "not_found"

    def __init__(self, user_ids: list[str]) -> None:
        super().__init__("unknown user: " + ", ".join(sorted(user_ids)[:10]))


class AlreadyParticipantError(RoomsError):
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("already a member of this room")


class TooManyError(RoomsError):
    code = "rate_limited"

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"too many {what} in the last hour (at most {limit}); try again later")


# State ----------------------------------------------------------------------------------------


@dataclass
class RoomState:
    id: str
    name: str
    image_url: str | None
    participant_ids: list[str]
    created_by: str
    created_at: datetime
    meetup_id: str | None = None

    def view(self) -> RoomInfo:
        return RoomInfo(
            id=self.id,
            name=self.name,
            image_url=self.image_url,
            participant_ids=list(self.participant_ids),
            created_by=self.created_by,
            created_at=self.created_at,
            meetup_id=self.meetup_id,
        )

    def require_participant(self, user_id: str) -> None:
        if user_id not in self.participant_ids:
            raise NotParticipantError()


def _distinct(ids: list[str], without: str) -> list[str]:
    return [i for i in dict.fromkeys(ids) if i != without]


def open_room(
    room_id: str,
    creator: User,
    name: str,
    image_url: str | None,
    invited: list[str],
    known: dict[str, User],
    now: datetime,
    meetup_id: str | None = None,
) -> tuple[RoomState, list[Fact]]:
    """A new room: its creator and the invited (duplicates and the creator ignored), all known users."""
    others = _distinct(invited, creator.id)
    if missing := [i for i in others if i not in known]:
        raise UnknownUserError(missing)
    participants = [creator.id, *others]
    state = RoomState(
        id=room_id,
        name=name,
        image_url=image_url,
        participant_ids=participants,
        created_by=creator.id,
        created_at=now,
        meetup_id=meetup_id,
    )
    names = {creator.id: creator.name} | {i: known[i].name for i in others}
    return state, [Fact("room.created", room_id, RoomCreated(room=state.view(), names=names))]


def invite(state: RoomState, inviter: User, invitee_id: str, invitee: User | None) -> list[Fact]:
    state.require_participant(inviter.id)
    if invitee is None:
        raise UnknownUserError([invitee_id])
    if invitee.id in state.participant_ids:
        raise AlreadyParticipantError()
    state.participant_ids.append(invitee.id)
    payload = MemberJoined(
        room=state.view(),
        user_id=invitee.id,
        user_name=invitee.name,
        invited_by=inviter.id,
        invited_by_name=inviter.name,
    )
    return [Fact("room.member_joined", state.id, payload)]


def leave(state: RoomState, leaver: User) -> list[Fact]:
    state.require_participant(leaver.id)
    state.participant_ids.remove(leaver.id)
    return [Fact("room.member_left", state.id, MemberLeft(room=state.view(), user_id=leaver.id, user_name=leaver.name))]


def rename(state: RoomState, user_id: str, name: str, user_name: str | None = None) -> list[Fact]:
    """The room's new name; the event says who renamed it (``user_name``) and the old name, for the
    announcement members see."""
    state.require_participant(user_id)
    if name == state.name:
        return []
    old, state.name = state.name, name
    payload = RoomUpdated(room=state.view(), renamed_by=user_id, renamed_by_name=user_name, old_name=old)
    return [Fact("room.updated", state.id, payload)]


def change_image(state: RoomState, user_id: str, image_url: str) -> list[Fact]:
    state.require_participant(user_id)
    if image_url == state.image_url:
        return []
    state.image_url = image_url
    return [_changed(state)]


def _changed(state: RoomState) -> Fact:
    return Fact("room.updated", state.id, RoomUpdated(room=state.view()))


def readable(state: RoomState | None, user_id: str) -> RoomState:
    """The room, for a participant; the error never carries its content."""
    if state is None:
        raise RoomNotFoundError()
    state.require_participant(user_id)
    return state


# What one user may do per hour ------------------------------------------------------------------

HOUR = 3600.0


@dataclass
class Allowance:
    """What a user did in the last hour that is limited: when (Unix seconds) they created each room,
    and added each person to a room."""

    id: str  # the user's
    rooms: list[float] = field(default_factory=list)
    invites: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    rooms: int  # rooms a user may create per hour
    invites: int  # people a user may add to rooms per hour


def spend(allowance: Allowance, now: float, limits: Limits, rooms: int = 0, invites: int = 0) -> None:
    """Count ``rooms`` created and ``invites`` people added at ``now``, or refuse what would go over
    the hour's limits (counting nothing)."""
    recent_rooms = [t for t in allowance.rooms if t > now - HOUR]
    recent_invites = [t for t in allowance.invites if t > now - HOUR]
    if rooms and len(recent_rooms) + rooms > limits.rooms:
        raise TooManyError("rooms created", limits.rooms)
    if invites and len(recent_invites) + invites > limits.invites:
        raise TooManyError("people added to rooms", limits.invites)
    allowance.rooms = recent_rooms + [now] * rooms
    allowance.invites = recent_invites + [now] * invites
