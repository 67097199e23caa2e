"""Meetups: state and rules, sans-I/O. Commands in, facts out, or a ``MeetupsError``.

A meetup keeps a replica of its polls (snapshots from the polls worker's events, applied only when
their aggregate version is newer) because alerts and moves are derived from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from contracts.common import parse_time
from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import MeetupCreated, MeetupMoved, MeetupUpdated, RoomInfo
from contracts.frames import MeetupFrame
from contracts.requests import CreateMeetup
from contracts.routing import user_key
from contracts.shapes import ALERT_OF_POLL, Alert, Attendee, Meetup, Poll, Rsvp, User


class MeetupsError(Rejected):
    pass


class MeetupNotFoundError(MeetupsError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such meetup")


class NotAttendeeError(MeetupsError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("not an attendee of this meetup")


class UnknownUserError(MeetupsError):
    code = "not_found"

    def __init__(self, user_ids: list[str]) -> None:
        super().__init__("unknown user: " + ", ".join(sorted(user_ids)[:10]))


# State ----------------------------------------------------------------------------------------


@dataclass
class MeetupState:
    id: str
    room_id: str
    name: str
    organizer_id: str
    location: str
    takes_place_on: datetime
    image_url: str | None
    created_at: datetime
    attendees: list[Attendee]
    polls: list[Poll] = field(default_factory=list)  # oldest first
    poll_versions: dict[str, int] = field(default_factory=dict)  # poll id -> version of its snapshot
    room_version: int = 0  # version of the last room membership snapshot applied

    @property
    def attendee_ids(self) -> list[str]:
        return [a.user_id for a in self.attendees]

    def alerts(self, user_id: str) -> list[Alert]:
        return alerts(self.id, self.polls, user_id)

    def view(self, user_id: str | None = None) -> Meetup:
        """The meetup as ``user_id`` sees it (with their alerts); without one, with no alerts."""
        return Meetup(
            id=self.id,
            room_id=self.room_id,
            name=self.name,
            organizer_id=self.organizer_id,
            location=self.location,
            takes_place_on=self.takes_place_on,
            image_url=self.image_url,
            attendees=list(self.attendees),
            polls=list(self.polls),
            alerts=self.alerts(user_id) if user_id is not None else [],
        )

    def require_attendee(self, user_id: str) -> None:
        if user_id not in self.attendee_ids:
            raise NotAttendeeError()


def alerts(meetup_id: str, polls: list[Poll], user_id: str) -> list[Alert]:
    """One per open poll in which ``user_id`` is a participant and has not voted."""
    return [
        Alert(type=ALERT_OF_POLL[poll.poll_type], meetup_id=meetup_id, poll_id=poll.id)
        for poll in polls
        if poll.status == "open"
        and user_id in poll.participant_ids
        and all(vote.user_id != user_id for vote in poll.votes)
    ]


def seen_by(meetup: Meetup | None, user_id: str) -> Meetup:
    """A meetup as its attendee ``user_id`` sees it, with their alerts (queries read this)."""
    if meetup is None:
        raise MeetupNotFoundError()
    if user_id not in [a.user_id for a in meetup.attendees]:
        raise NotAttendeeError()
    return meetup.model_copy(update={"alerts": alerts(meetup.id, meetup.polls, user_id)})


def readable(state: MeetupState | None, user_id: str) -> MeetupState:
    """The meetup, for an attendee; the error never carries its content."""
    if state is None:
        raise MeetupNotFoundError()
    state.require_attendee(user_id)
    return state


def _updated(state: MeetupState, recipients: Iterable[str], type: str = "meetup.updated") -> tuple[Send, ...]:
    """Per recipient: the meetup carries that user's alerts."""
    return tuple(Send(user_key(i), type, MeetupFrame(meetup=state.view(i))) for i in dict.fromkeys(recipients))


def _changed(state: MeetupState, recipients: Iterable[str]) -> Fact:
    changed = MeetupUpdated(meetup=state.view(), created_at=state.created_at)
    return Fact("meetup.updated", state.id, changed, _updated(state, recipients))


# Commands -------------------------------------------------------------------------------------


def invitees(organizer_id: str, attendee_ids: list[str], known: dict[str, User]) -> list[str]:
    """The attendees to invite: duplicates and the organizer ignored, all known users."""
    others = [i for i in dict.fromkeys(attendee_ids) if i != organizer_id]
    if missing := [i for i in [organizer_id, *others] if i not in known]:
        raise UnknownUserError(missing)
    return others


def open_meetup(
    meetup_id: str, room: RoomInfo, organizer: User, data: CreateMeetup, now: datetime
) -> tuple[MeetupState, list[Fact]]:
    """A new meetup whose attendees are its room's participants; the organizer says yes."""
    attendees = [
        Attendee(user_id=i, rsvp="yes" if i == organizer.id else "not_responded") for i in room.participant_ids
    ]
    state = MeetupState(
        id=meetup_id,
        room_id=room.id,
        name=data.name,
        organizer_id=organizer.id,
        location=data.location,
        takes_place_on=data.takes_place_on,
        image_url=data.image_url,
        created_at=now,
        attendees=attendees,
    )
    payload = MeetupCreated(meetup=state.view(), created_at=state.created_at, organizer_name=organizer.name)
    return state, [Fact("meetup.created", meetup_id, payload, _updated(state, state.attendee_ids, "meetup.created"))]


def change_rsvp(state: MeetupState, user_id: str, rsvp: Rsvp) -> list[Fact]:
    state.require_attendee(user_id)
    index = state.attendee_ids.index(user_id)
    if state.attendees[index].rsvp == rsvp:
        return []
    state.attendees[index] = Attendee(user_id=user_id, rsvp=rsvp)
    return [_changed(state, state.attendee_ids)]


def change_image(state: MeetupState, user_id: str, image_url: str) -> list[Fact]:
    state.require_attendee(user_id)
    if image_url == state.image_url:
        return []
    state.image_url = image_url
    return [_changed(state, state.attendee_ids)]


# Reactions ------------------------------------------------------------------------------------


def follow_room(state: MeetupState, room: RoomInfo, version: int) -> list[Fact] | None:
    """Attendees follow the room's participants (a snapshot, applied only when newer: None when
    older, nothing to store).

    Newcomers join as ``not_responded``; leavers stop being attendees (the organizer too) and leave
    the open polls of the replica, which may close them: the meetup then moves here, in the same
    update, so a leave sends each remaining attendee one ``meetup.updated`` (the polls worker's later
    events change nothing more).
    """
    if version <= state.room_version:
        return None
    state.room_version = version
    rsvps = {a.user_id: a.rsvp for a in state.attendees}
    attendees = [Attendee(user_id=i, rsvp=rsvps.get(i, "not_responded")) for i in room.participant_ids]
    if attendees == state.attendees:
        return []
    left = [i for i in rsvps if i not in room.participant_ids]
    state.attendees = attendees
    moves: list[Fact] = []
    for poll in list(state.polls):
        if poll.status == "open" and any(i in poll.participant_ids for i in left):
            moves += _replace_poll(state, _without(poll, left))[0]
    # Last, so its snapshot is the meetup as the whole change left it.
    updated = Fact("meetup.updated", state.id, MeetupUpdated(meetup=state.view(), created_at=state.created_at))
    return _deliver(state, [*moves, updated], state.attendee_ids)


def apply_poll(state: MeetupState, event_type: str, poll: Poll, version: int) -> list[Fact] | None:
    """A snapshot of one of the meetup's polls, applied when newer than the replica's (None: nothing
    to store).

    Users whose alerts change get ``meetup.updated``; a reschedule or relocate poll closing with a
    winner moves the meetup, and then every attendee gets it (still once).
    """
    if event_type == "poll.vote_cast" and poll.status == "closed":
        return None  # this vote closed it: the poll.closed of the same command sends the one update
    if version <= state.poll_versions.get(poll.id, 0):
        return None
    state.poll_versions[poll.id] = version
    facts, recipients = _replace_poll(state, poll)
    if not facts:  # every change is an event, the meetup view follows them
        facts = [Fact("meetup.updated", state.id, MeetupUpdated(meetup=state.view(), created_at=state.created_at))]
    return _deliver(state, facts, recipients)


def _replace_poll(state: MeetupState, poll: Poll) -> tuple[list[Fact], list[str]]:
    """Put ``poll`` in the replica: the facts that causes, and who must get the meetup again."""
    before = {i: state.alerts(i) for i in state.attendee_ids}
    old = next((p for p in state.polls if p.id == poll.id), None)
    state.polls = sorted([p for p in state.polls if p.id != poll.id] + [poll], key=lambda p: (p.created_at, p.id))
    closing = poll.status == "closed" and (old is None or old.status == "open")
    if closing and (moved := _move(state, poll)):
        return [moved], state.attendee_ids
    return [], [i for i in state.attendee_ids if state.alerts(i) != before[i]]


def _move(state: MeetupState, poll: Poll) -> Fact | None:
    """A closed reschedule or relocate poll with a winner moves the meetup (unless already there)."""
    if poll.winner_index is None or poll.poll_type == "generic":
        return None
    value = poll.choices[poll.winner_index]
    if poll.poll_type == "reschedule":
        when = parse_time(value)
        if when == state.takes_place_on:
            return None
        state.takes_place_on, moved_field = when, "takes_place_on"
    else:
        if value == state.location:
            return None
        state.location, moved_field = value, "location"
    return Fact(
        "meetup.moved",
        state.id,
        MeetupMoved(meetup=state.view(), created_at=state.created_at, poll_id=poll.id, field=moved_field, value=value),
    )


def _deliver(state: MeetupState, facts: list[Fact], recipients: Iterable[str]) -> list[Fact]:
    """One request sends each recipient at most one ``meetup.updated``: all of them ride on the last
    fact, built from the final state."""
    if not facts or not (sends := _updated(state, recipients)):
        return facts
    last = facts[-1]
    return [*facts[:-1], Fact(last.type, last.aggregate_id, last.payload, sends)]


def _without(poll: Poll, leavers: list[str]) -> Poll:
    """``poll`` after ``leavers`` left it (their votes still count): the polls worker's own rule,
    applied to the replica so that the meetup moves in the same update as the leave."""
    remaining = [i for i in poll.participant_ids if i not in leavers]
    voted = {vote.user_id for vote in poll.votes}
    if all(i in voted for i in remaining):  # everyone left has voted, or nobody is left
        return poll.model_copy(update={"participant_ids": remaining, "status": "closed", "winner_index": _winner(poll)})
    return poll.model_copy(update={"participant_ids": remaining})


def _winner(poll: Poll) -> int | None:
    """Most votes, ties to the lowest index, None when nobody voted."""
    counts = [0] * len(poll.choices)
    for vote in poll.votes:
        counts[vote.choice_index] += 1
    return counts.index(max(counts)) if poll.votes else None
