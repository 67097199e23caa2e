"""Rooms: state and rules, sans-I/O. Commands in, facts out, or a ``RoomsError``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import MemberAdded, MemberRemoved, ReadMarkMoved, RoomChanged, RoomOpened
from contracts.frames import MemberJoined, MemberLeft, RoomCreated, RoomRead, RoomUpdated
from contracts.routing import room_key, user_key
from contracts.shapes import Room, RoomItem, User


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
    read_marks: dict[str, int] = field(default_factory=dict)  # kept for members who left too
    # The room's activity, as far as rooms has seen messaging's items (a projection, not stored here).
    last_seq: int = 0
    last_item: RoomItem | None = None

    def view(self) -> Room:
        return Room(
            id=self.id,
            name=self.name,
            image_url=self.image_url,
            participant_ids=list(self.participant_ids),
            created_by=self.created_by,
            created_at=self.created_at,
            last_seq=self.last_seq,
        )

    def require_participant(self, user_id: str) -> None:
        if user_id not in self.participant_ids:
            raise NotParticipantError()

    def last_activity(self) -> datetime:
        return self.last_item.sent_at if self.last_item else self.created_at


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
        read_marks={i: 0 for i in participants},
    )
    room = state.view()
    names = {creator.id: creator.name} | {i: known[i].name for i in others}
    sends = tuple(Send(user_key(i), "room.created", RoomCreated(room=room)) for i in participants)
    return state, [Fact("room.created", room_id, RoomOpened(room=room, names=names, meetup_id=meetup_id), sends)]


def invite(state: RoomState, inviter: User, invitee_id: str, invitee: User | None) -> list[Fact]:
    state.require_participant(inviter.id)
    if invitee is None:
        raise UnknownUserError([invitee_id])
    if invitee.id in state.participant_ids:
        raise AlreadyParticipantError()
    state.participant_ids.append(invitee.id)
    # The newcomer has read up to the latest item before the announcement of their arrival.
    state.read_marks[invitee.id] = max(state.read_marks.get(invitee.id, 0), state.last_seq)
    room = state.view()
    joined = MemberJoined(room_id=state.id, user_id=invitee.id, invited_by=inviter.id, room=room)
    payload = MemberAdded(
        room=room,
        user_id=invitee.id,
        user_name=invitee.name,
        invited_by=inviter.id,
        invited_by_name=inviter.name,
    )
    sends = (
        Send(room_key(state.id), "room.member_joined", joined),
        Send(user_key(invitee.id), "room.member_joined", joined),
    )
    return [Fact("room.member_joined", state.id, payload, sends)]


def leave(state: RoomState, leaver: User) -> list[Fact]:
    state.require_participant(leaver.id)
    state.participant_ids.remove(leaver.id)
    left = MemberLeft(room_id=state.id, user_id=leaver.id)
    payload = MemberRemoved(room=state.view(), user_id=leaver.id, user_name=leaver.name)
    sends = (Send(room_key(state.id), "room.member_left", left), Send(user_key(leaver.id), "room.member_left", left))
    return [Fact("room.member_left", state.id, payload, sends)]


def mark_read(state: RoomState, user_id: str, seq: int | None) -> list[Fact]:
    """Move ``user_id``'s read mark to ``seq`` (or the latest item); it never moves backwards."""
    state.require_participant(user_id)
    target = state.last_seq if seq is None else min(seq, state.last_seq)
    return _move_mark(state, user_id, target)


def _move_mark(state: RoomState, user_id: str, target: int) -> list[Fact]:
    if target <= state.read_marks.get(user_id, 0):
        return []
    state.read_marks[user_id] = target
    moved = ReadMarkMoved(room_id=state.id, user_id=user_id, last_read_seq=target)
    read = RoomRead(room_id=state.id, last_read_seq=target)
    return [Fact("room.read", state.id, moved, (Send(user_key(user_id), "room.read", read),))]


def rename(state: RoomState, user_id: str, name: str) -> list[Fact]:
    state.require_participant(user_id)
    if name == state.name:
        return []
    state.name = name
    return [_changed(state)]


def change_image(state: RoomState, user_id: str, image_url: str) -> list[Fact]:
    state.require_participant(user_id)
    if image_url == state.image_url:
        return []
    state.image_url = image_url
    return [_changed(state)]


def _changed(state: RoomState) -> Fact:
    room = state.view()
    return Fact(
        "room.updated",
        state.id,
        RoomChanged(room=room),
        (Send(room_key(state.id), "room.updated", RoomUpdated(room=room)),),
    )


def message_sent(state: RoomState, item: RoomItem) -> list[Fact]:
    """Sending a message moves the sender's read mark to it."""
    if item.kind == "message" and item.sender_id in state.participant_ids:
        return _move_mark(state, item.sender_id, item.seq)
    return []


def readable(state: RoomState | None, user_id: str) -> RoomState:
    """The room, for a participant; the error never carries its content."""
    if state is None:
        raise RoomNotFoundError()
    state.require_participant(user_id)
    return state
